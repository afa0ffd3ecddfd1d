using System.Diagnostics;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Stat;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe stat [-p PID... | --all [PATH] | -- CMD ARGS...]: one row per Python process (pid, version, command
/// line) with calls/s, gc/s, imports/s and audit events/s, refreshed every --interval. Without a target it
/// watches the whole machine: every running Python binary with probes is found by the interpreter file its
/// processes map (not by command name, so python3, gunicorn or a renamed copy count), counted in the kernel
/// per process, and new processes of those binaries are picked up by the system-wide links; binaries that
/// start later are attached at the next refresh.
/// </summary>
internal static class StatCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        var output = new OutputOptions(OutputKind.Rates);
        var interval = new Option<double>("--interval", "-i") { Description = "Refresh every SECONDS (default 1).", HelpName = "SECONDS", DefaultValueFactory = _ => 1.0 };
        var stopAfter = SharedOptions.Duration();
        var entryGate = new Option<bool>("--entry-gate") { Description = "Count calls on Python 3.11 too, by turning its tracing gate on (slows those processes about 10x while pyprobe runs)." };
        var noWrite = new Option<bool>("--no-write") { Description = "Never write into the target (with -p, calls on 3.11-3.14 without function probes are counted only with its eval-frame hook set)." };
        var command = new Command("stat", "One row per Python process (pid, version, command line): calls/s, gc/s, imports/s and audit events/s, refreshed every interval. Without a target: every Python on the machine.");
        target.AddTo(command);
        command.Options.Add(interval);
        command.Options.Add(stopAfter);
        command.Options.Add(entryGate);
        command.Options.Add(noWrite);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var pids = result.GetValue(target.Pid) ?? [];
            var all = result.GetResult(target.All) is not null;
            var argv = CommandTail.Current ?? result.GetValue(target.Command) ?? [];
            TargetSelection? selection = pids.Length > 0 || all || argv.Length > 0 ? target.Read(result) : null;
            var every = result.GetValue(interval);
            if (!(every > 0) || double.IsInfinity(every)) throw new UsageException("--interval must be positive");
            var duration = SharedOptions.ReadDuration(result, stopAfter);
            var format = output.ReadFormat(result);
            Privileges.RequireTracing("stat");
            var stderr = result.InvocationConfiguration.Error;
            var gate = result.GetValue(entryGate);

            var systemWide = selection is null || selection is TargetSelection.AllProcesses { Path: null };
            // Named processes may have no probes at all: their calls are then counted through _PyEval_EvalFrameDefault.
            var named = pids.Length > 0;
            var evalFrameCalls = !named ? StatEvalFrameCalls.Never
                : result.GetValue(noWrite) ? StatEvalFrameCalls.NamedProcessesWithoutWrite : StatEvalFrameCalls.NamedProcesses;
            // Opened before the targets are resolved (a command to start is started then): a file that cannot be written
            // is said before anything runs.
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var targets = systemWide ? TargetSet.SystemWide() : TargetSelector.Resolve(selection!, withoutProbes: named);
            StatSampler? sampler = null;
            using var run = TracingRun<StatSession>.Start(targets, t =>
            {
                var session = StatSession.Create(gate, evalFrameCalls: evalFrameCalls);
                try
                {
                    sampler = new StatSampler(session, systemWide ? null : t.Targets,
                        added =>
                        {
                            if (added.CallsNote is { } note)
                                stderr.WriteLine($"pyprobe: note: {note}");
                            if (!added.CountsCalls)
                                stderr.WriteLine($"pyprobe: note: {TargetText.Describe(added.Target)}: calls/s is n/a ({added.CallsReason})");
                            else if (added.Gated)
                                stderr.WriteLine($"pyprobe: note: {TargetText.Describe(added.Target)}: tracing gate on to count calls; its processes run about 10x slower on call-heavy code until pyprobe exits");
                        },
                        (process, e) => stderr.WriteLine($"pyprobe: note: cannot attach to {process.DisplayPath}: {e.Message}"),
                        process => stderr.WriteLine($"pyprobe: note: pid {process.Pid} runs CPython {process.Version} from {process.DisplayPath}, which has no USDT probes: nothing is counted for it machine-wide; 'pyprobe stat -p {process.Pid}' counts its calls through _PyEval_EvalFrameDefault"));
                    sampler.AttachAll();
                }
                catch
                {
                    session.Dispose();
                    throw;
                }
                var where = systemWide
                    ? $"{sampler.BinaryCount} Python binar{(sampler.BinaryCount == 1 ? "y" : "ies")} (every process, and new ones)"
                    : TargetText.Where(t.Targets);
                return new Attachment<StatSession>(session, "counters", where);
            }, duration, stderr);

            var writer = StatWriters.For(format, sink);
            var step = TimeSpan.FromSeconds(every);
            var next = step;
            var intervals = 0;
            while (true)
            {
                var goesOn = run.WaitUntil(next);
                var now = run.Elapsed;
                if (!goesOn && now - sampler!.LastSample < TimeSpan.FromMilliseconds(10)) break;
                writer.Write((ulong)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency)), sampler!.Sample(now));
                intervals++;
                next += step;
                if (next < now) next = now + step;
                if (!goesOn) break;
            }
            return run.Complete([$"{run.DetachedAfter}: {intervals} interval{(intervals == 1 ? "" : "s")} reported"]);
        });
        return command;
    }
}
