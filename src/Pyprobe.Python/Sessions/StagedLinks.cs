namespace Pyprobe.Python.Sessions;

/// <summary>
/// A target's programs, loaded first and attached afterwards, in the order they were staged. The first uprobe link a
/// process makes waits for an RCU grace period (~14 ms here; <see cref="Bpf.Links.UprobeRegistrationWarmup"/> starts it
/// at launch), and loading a program (the verifier) takes milliseconds of its own: loading every program before the
/// first link lets the two overlap instead of adding up. The order still holds where it matters (what forgets a code
/// object goes on before what remembers one; returns before entries; the hook after every probe).
/// </summary>
public sealed class StagedLinks : IDisposable
{
    private readonly List<Action> _attaches = [];
    private readonly List<BpfProgram> _programs = [];

    /// <summary>Keeps <paramref name="program"/> (loaded) until <see cref="AttachAll"/> runs <paramref name="attach"/> with it.</summary>
    public void Stage(BpfProgram program, Action<BpfProgram> attach)
    {
        _programs.Add(program);
        _attaches.Add(() => attach(program));
    }

    /// <summary>Runs <paramref name="attach"/> in its turn.</summary>
    public void Stage(Action attach) => _attaches.Add(attach);

    /// <summary>Attaches everything staged, in order.</summary>
    public void AttachAll()
    {
        var attaches = _attaches.ToList();
        _attaches.Clear();
        foreach (var attach in attaches) attach();
    }

    /// <summary>Closes the programs' descriptors: their links hold them; one never attached is unloaded.</summary>
    public void Dispose()
    {
        foreach (var program in _programs) program.Dispose();
        _programs.Clear();
        _attaches.Clear();
    }
}
