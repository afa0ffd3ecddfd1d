using System.Diagnostics;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Commands.Gc;

/// <summary>A live set of probes whose records arrive in a ring buffer (a TraceSession or an AuditSession).</summary>
internal interface IEventSource : IDisposable
{
    RingBufferReader Reader { get; }
    UprobeAttachMode AttachMode { get; }
    ulong Lost { get; }
    void Detach();
}

/// <summary>A <see cref="TraceSession"/> as an event source.</summary>
internal sealed class TraceSessionSource(TraceSession session) : IEventSource
{
    public TraceSession Session => session;
    public RingBufferReader Reader => session.Reader;
    public UprobeAttachMode AttachMode => session.AttachMode;
    public ulong Lost => session.Lost;
    public void Detach() => session.Detach();
    public void Dispose() => session.Dispose();
}

/// <summary>
/// The life of an event command (gc, imports, audit), the same as trace's: resolve targets, check the
/// probes exist, attach, release a held command, drain the ring until Ctrl-C / SIGTERM / the target's
/// exit / --duration, detach, drain the rest, report delivered and lost events.
/// </summary>
internal sealed class EventRun : IDisposable
{
    private readonly TraceTargets _targets;
    private readonly IEventSource _source;
    private readonly StopSignal _stop;
    private readonly TextWriter _stderr;
    private readonly Stopwatch _elapsed = new();

    private EventRun(TraceTargets targets, IEventSource source, TextWriter stderr)
    {
        _targets = targets;
        _source = source;
        _stderr = stderr;
        _stop = new StopSignal(source.Reader.Interrupt);
    }

    public TraceTargets Targets => _targets;
    public IEventSource Source => _source;
    public bool ManyProcesses => _targets.ManyProcesses;

    /// <summary>
    /// Resolves <paramref name="selection"/>, checks that some target has every probe in <paramref name="probes"/>
    /// (else one-line error naming <paramref name="what"/>), attaches with <paramref name="attach"/> and prints the Attached line.
    /// </summary>
    public static EventRun Start(TargetSelection selection, IReadOnlyList<string> probes, string what, Func<IReadOnlyList<TraceTarget>, IEventSource> attach, TextWriter stderr)
    {
        var targets = TraceTargets.Resolve(selection);
        try
        {
            var usable = new List<TraceTarget>();
            foreach (var target in targets.Targets)
            {
                var missing = probes.Where(p => target.Binary.FindProbe(PythonProbeCatalog.Provider, p) is null).ToList();
                if (missing.Count == 0) usable.Add(target);
                else stderr.WriteLine($"pyprobe: note: {Describe(target)} has no {string.Join(", ", missing)} probe");
            }
            if (usable.Count == 0)
                throw new CliException($"{string.Join(", ", targets.Targets.Select(Describe))} has no {string.Join("/", probes)} probes, which {what} needs");
            var took = Stopwatch.StartNew();
            var source = attach(usable);
            took.Stop();
            var run = new EventRun(targets, source, stderr);
            var where = string.Join("; ", usable.Select(t => t.AllProcesses ? $"{t.DisplayPath} (every process)" : $"{t.DisplayPath} (pid {string.Join(", ", t.Pids)})"));
            var mode = source.AttachMode == UprobeAttachMode.UprobeMulti ? "uprobe_multi" : "perf-event uprobes";
            stderr.WriteLine($"Attached {string.Join(", ", probes)} to {where} via {mode} in {took.Elapsed.TotalMilliseconds:0.0} ms. Ctrl-C to stop.");
            stderr.Flush();
            targets.Child?.Resume();
            run._elapsed.Start();
            return run;
        }
        catch
        {
            targets.Dispose();
            throw;
        }
    }

    /// <summary>Delivers records to <paramref name="handler"/> until the run ends; <paramref name="idle"/> runs when the ring was empty.</summary>
    public void Loop(RecordHandler handler, TimeSpan? duration, Action idle)
    {
        while (!_stop.Requested)
        {
            _source.Reader.WaitForData(TraceSession.PollInterval);
            if (_source.Reader.Drain(handler) == 0) idle();
            if (duration is { } limit && _elapsed.Elapsed >= limit) break;
            if (!_targets.AnyTargetAlive()) break;
        }
        _source.Detach();
        while (_source.Reader.Drain(handler) > 0) { }
    }

    /// <summary>Reports delivered and lost events; returns the exit code (the command's own for -- CMD).</summary>
    public int Complete(long delivered, long? shown = null)
    {
        var lost = _source.Lost;
        _stderr.WriteLine($"Detached after {_elapsed.Elapsed.TotalSeconds:0.00} s: {delivered} events delivered, {lost} lost{(shown is { } n && n != delivered ? $", {n} shown" : "")}");
        if (lost > 0)
            _stderr.WriteLine($"pyprobe: warning: {lost} events were lost because the ring buffer was full");
        _stderr.Flush();
        if (_targets.Child is { } child)
        {
            if (_stop.Requested && !child.HasExited) _stop.ForwardTo(child.Pid);
            return child.WaitForExit();
        }
        return ExitCodes.Success;
    }

    internal static string Describe(TraceTarget target) => target.Version is null ? target.DisplayPath : $"Python {target.Version} ({target.DisplayPath})";

    public void Dispose()
    {
        _stop.Dispose();
        _source.Dispose();
        _targets.Dispose();
    }
}

/// <summary>Options gc, imports and audit share with trace: --tid, --duration, --ring-buffer-mb.</summary>
internal sealed class EventOptions
{
    public System.CommandLine.Option<int[]> Tids { get; } = new("--tid") { Description = "Only these threads (repeatable; filtered in the kernel).", HelpName = "TID", Arity = System.CommandLine.ArgumentArity.OneOrMore };
    public System.CommandLine.Option<double?> Duration { get; } = new("--duration") { Description = "Stop after SECONDS.", HelpName = "SECONDS" };
    public System.CommandLine.Option<int> RingSize { get; } = new("--ring-buffer-mb") { Description = "Kernel ring buffer size in MiB (a power of two, default 16).", HelpName = "MIB", DefaultValueFactory = _ => 16 };

    public void AddTo(System.CommandLine.Command command)
    {
        command.Options.Add(Tids);
        command.Options.Add(Duration);
        command.Options.Add(RingSize);
    }

    public (IReadOnlyList<int>? Tids, TimeSpan? Duration, uint RingBytes) Read(System.CommandLine.ParseResult result)
    {
        var seconds = result.GetValue(Duration);
        if (seconds is <= 0) throw new UsageException("--duration must be positive");
        var mib = result.GetValue(RingSize);
        if (mib <= 0 || (mib & (mib - 1)) != 0 || mib > 1024) throw new UsageException("--ring-buffer-mb must be a power of two from 1 to 1024");
        return (result.GetValue(Tids) is { Length: > 0 } t ? t : null, seconds is null ? null : TimeSpan.FromSeconds(seconds.Value), (uint)mib << 20);
    }
}
