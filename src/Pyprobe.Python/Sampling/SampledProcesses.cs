using Pyprobe.Python.Launching;

namespace Pyprobe.Python.Sampling;

/// <summary>Which processes a recording follows.</summary>
public abstract record SampleScope
{
    /// <summary>These processes (-p), until they exit.</summary>
    public sealed record Processes(IReadOnlyList<int> Pids) : SampleScope;
    /// <summary>A started command and every Python among its descendants (-- CMD: a shell script, env, a virtualenv's python…).</summary>
    public sealed record Descendants(int RootPid) : SampleScope;
    /// <summary>Every CPython on the machine, new ones too (--all); <paramref name="Interpreter"/> narrows it to one interpreter file.</summary>
    public sealed record Machine(string? Interpreter) : SampleScope;
}

/// <summary>
/// Finds the CPython processes of a <see cref="SampleScope"/> as they come and go. Each check of a process
/// opens its interpreter's ELF file, so a process found not to be Python is remembered by its executable and
/// start time: the same pid is looked at again only after an exec.
/// </summary>
public sealed class SampledProcesses
{
    private readonly SampleScope _scope;
    private readonly Dictionary<int, string> _notPython = [];
    private readonly Dictionary<int, string> _sampled = [];
    private readonly Dictionary<string, bool> _interpreterMatches = new(StringComparer.Ordinal);
    private readonly int _self = Environment.ProcessId;

    /// <summary>How long after its start a process that shows no interpreter is still looked at again.</summary>
    private static readonly TimeSpan StillLoading = TimeSpan.FromSeconds(2);

    public SampledProcesses(SampleScope scope) => _scope = scope;

    /// <summary>The scope can gain processes while the run goes on (-- CMD, --all); -p names them all at the start.</summary>
    public bool FindsNewProcesses => _scope is not SampleScope.Processes;

    /// <summary>What every command says about a Python process it leaves out (after its "pyprobe: note: ").</summary>
    public static string NotSampled(int pid, string reason) => $"process {pid} is not sampled: {reason}";

    /// <summary>Processes being sampled now, with the interpreter file each runs.</summary>
    public IReadOnlyDictionary<int, string> Sampled => _sampled;

    /// <summary>
    /// Looks at the processes in scope: those newly found to run CPython are returned attached (the caller owns
    /// them), those that exited are returned by pid. Python processes the runtime model cannot read are
    /// reported through <paramref name="unsupported"/> once each.
    /// </summary>
    public (IReadOnlyList<CPythonProcess> Added, IReadOnlyList<int> Removed) Poll(Action<int, string>? unsupported = null)
    {
        var candidates = Candidates();
        var removed = _sampled.Keys.Where(pid => !candidates.Contains(pid) || !ProcessTree.IsAlive(pid)).ToList();
        foreach (var pid in removed) _sampled.Remove(pid);
        var added = new List<CPythonProcess>();
        foreach (var pid in candidates)
        {
            if (_sampled.ContainsKey(pid)) continue;
            var identity = Identity(pid);
            if (identity is null || (_notPython.TryGetValue(pid, out var seen) && seen == identity)) continue;
            try
            {
                var process = CPythonProcess.Attach(pid);
                if (_scope is SampleScope.Machine { Interpreter: { } wanted } && !RunsInterpreter(process, wanted))
                {
                    process.Dispose();
                    _notPython[pid] = identity;
                    continue;
                }
                _sampled[pid] = process.Binary.DisplayPath;
                added.Add(process);
            }
            catch (UnsupportedRuntimeException e)
            {
                _notPython[pid] = identity;
                unsupported?.Invoke(pid, e.Message);
            }
            catch (Exception e) when (e is UsdtException or IOException or UnauthorizedAccessException)
            {
                // Not Python (yet: a shell before its exec is looked at again after it), or gone. A process in its
                // first moments may not have mapped its interpreter yet (the dynamic loader maps libpython, or the
                // python it was asked to run, after the exec): it is looked at again until it is older.
                if (ProcessTree.Age(pid) is not { } age || age >= StillLoading) _notPython[pid] = identity;
            }
        }
        return (added, removed);
    }

    private HashSet<int> Candidates() => _scope switch
    {
        SampleScope.Processes p => p.Pids.Where(ProcessTree.IsAlive).ToHashSet(),
        SampleScope.Descendants d => ProcessTree.WithDescendants(d.RootPid, except: _self),
        SampleScope.Machine => ProcessTree.AllPids(except: _self),
        _ => [],
    };

    private bool RunsInterpreter(CPythonProcess process, string wanted)
    {
        var key = process.Binary.OpenPath;
        if (_interpreterMatches.TryGetValue(key, out var matches)) return matches;
        matches = SameFile(process.Binary.OpenPath, wanted) || SameFile($"/proc/{process.Pid}/exe", wanted);
        _interpreterMatches[key] = matches;
        return matches;
    }

    private static bool SameFile(string a, string b)
    {
        try
        {
            var realA = new FileInfo(a).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(a);
            var realB = new FileInfo(b).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(b);
            return realA == realB;
        }
        catch (IOException) { return false; }
    }

    /// <summary>The executable and start time: what changes when a pid is reused or execs.</summary>
    private static string? Identity(int pid)
    {
        try
        {
            var exe = new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";
            return $"{exe}|{ProcessTree.StartTime(pid)}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
