using System.CommandLine;
using System.Diagnostics;
using Pyprobe.Bpf.Links;
using Pyprobe.Cli.Commands.Gc;
using Pyprobe.Cli.Commands.Stat;
using Pyprobe.Cli.Output;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Stat;
using Pyprobe.Python.Tracing;

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
        var output = new OutputOptions();
        var interval = new Option<double>("--interval", "-i") { Description = "Refresh every SECONDS (default 1).", HelpName = "SECONDS", DefaultValueFactory = _ => 1.0 };
        var duration = new Option<double?>("--duration") { Description = "Stop after SECONDS.", HelpName = "SECONDS" };
        var entryGate = new Option<bool>("--entry-gate") { Description = "Count calls on Python 3.11 too, by turning its tracing gate on (slows those processes about 10x while pyprobe runs)." };
        var command = new Command("stat", "One row per Python process (pid, version, command line): calls/s, gc/s, imports/s and audit events/s, refreshed every interval. Without a target: every Python on the machine.");
        target.AddTo(command);
        command.Options.Add(interval);
        command.Options.Add(duration);
        command.Options.Add(entryGate);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var pids = result.GetValue(target.Pid) ?? [];
            var all = result.GetResult(target.All) is not null;
            var argv = CommandTail.Current ?? result.GetValue(target.Command) ?? [];
            TargetSelection? selection = pids.Length > 0 || all || argv.Length > 0 ? target.Read(result) : null;
            var every = result.GetValue(interval);
            if (!(every > 0) || double.IsInfinity(every)) throw new UsageException("--interval must be positive");
            var seconds = result.GetValue(duration);
            if (seconds is <= 0) throw new UsageException("--duration must be positive");
            var json = output.ReadFormat(result) == OutputFormat.Json;
            Privileges.RequireTracing("stat");
            var stderr = result.InvocationConfiguration.Error;
            var gate = result.GetValue(entryGate);

            var processes = new StatProcesses();
            var systemWide = selection is null || selection is TargetSelection.AllProcesses { Path: null };
            using var targets = systemWide ? null : TraceTargets.Resolve(selection!);
            using var session = StatSession.Create(gate);
            var attachedBinaries = new HashSet<string>(StringComparer.Ordinal);
            var took = Stopwatch.StartNew();

            void Add(TraceTarget t)
            {
                var added = session.Add(t);
                attachedBinaries.Add(t.AttachPath);
                if (!added.CountsCalls)
                    stderr.WriteLine($"pyprobe: note: {EventRun.Describe(t)}: calls/s is n/a ({added.CallsReason})");
                else if (added.Gated)
                    stderr.WriteLine($"pyprobe: note: {EventRun.Describe(t)}: tracing gate on to count calls; its processes run about 10x slower on call-heavy code until pyprobe exits");
            }

            void AttachNewBinaries(List<PythonProcess> running)
            {
                foreach (var p in running)
                {
                    if (attachedBinaries.Contains(p.HostPath)) continue;
                    try
                    {
                        Add(StatProcesses.SystemWideTarget(p));
                    }
                    catch (Exception e) when (e is Pyprobe.Usdt.UsdtException or Pyprobe.Bpf.Sys.SyscallException or IOException or InvalidOperationException)
                    {
                        attachedBinaries.Add(p.HostPath);
                        stderr.WriteLine($"pyprobe: note: cannot attach to {p.DisplayPath}: {e.Message}");
                    }
                }
            }

            if (systemWide) AttachNewBinaries(processes.Scan());
            else foreach (var t in targets!.Targets) Add(t);
            took.Stop();
            var mode = session.AttachMode == UprobeAttachMode.UprobeMulti ? "uprobe_multi" : "perf-event uprobes";
            var where = systemWide
                ? $"{attachedBinaries.Count} Python binar{(attachedBinaries.Count == 1 ? "y" : "ies")} (every process, and new ones)"
                : string.Join("; ", targets!.Targets.Select(t => t.AllProcesses ? $"{t.DisplayPath} (every process)" : $"{t.DisplayPath} (pid {string.Join(", ", t.Pids)})"));
            stderr.WriteLine($"Attached counters to {where} via {mode} in {took.Elapsed.TotalMilliseconds:0.0} ms. Ctrl-C to stop.");
            stderr.Flush();

            using var wake = new ManualResetEventSlim();
            using var stop = new StopSignal(wake.Set);
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var writer = new StatWriter(sink.Writer, json);
            targets?.Child?.Resume();

            var clock = Stopwatch.StartNew();
            var previous = new Dictionary<int, StatCounts>();
            var last = TimeSpan.Zero;
            var step = TimeSpan.FromSeconds(every);
            var next = step;
            var callsCounted = new Dictionary<string, bool>(StringComparer.Ordinal);
            foreach (var t in session.Targets) callsCounted[t.Target.AttachPath] = t.CountsCalls;
            var intervals = 0;
            while (true)
            {
                var ended = false;
                while (clock.Elapsed < next)
                {
                    if (stop.Requested || (seconds is { } limit && clock.Elapsed.TotalSeconds >= limit) || (targets is not null && !targets.AnyTargetAlive()))
                    {
                        ended = true;
                        break;
                    }
                    var until = next - clock.Elapsed;
                    if (seconds is { } l && TimeSpan.FromSeconds(l) - clock.Elapsed < until) until = TimeSpan.FromSeconds(l) - clock.Elapsed;
                    wake.Wait(TimeSpan.FromMilliseconds(Math.Clamp(until.TotalMilliseconds, 1, 100)));
                }
                var now = clock.Elapsed;
                if (now - last < TimeSpan.FromMilliseconds(10) && ended) break;

                List<PythonProcess> rowsFor;
                if (systemWide)
                {
                    rowsFor = processes.Scan();
                    AttachNewBinaries(rowsFor);
                    foreach (var t in session.Targets) callsCounted[t.Target.AttachPath] = t.CountsCalls;
                }
                else
                {
                    var wanted = targets!.Targets;
                    var running = wanted.Any(t => t.AllProcesses) ? processes.Scan() : [];
                    rowsFor = [];
                    foreach (var t in wanted)
                    {
                        if (t.AllProcesses) rowsFor.AddRange(running.Where(p => SameFile(p.HostPath, t.AttachPath)));
                        else foreach (var pid in t.Pids)
                                if (processes.Get(pid) is { } p) rowsFor.Add(p with { HostPath = t.AttachPath });
                    }
                }

                var counts = session.Read();
                var dt = (now - last).TotalSeconds;
                var rows = new List<StatRow>();
                foreach (var p in rowsFor.DistinctBy(p => p.Pid).OrderBy(p => p.Pid))
                {
                    var cur = counts.GetValueOrDefault(p.Pid);
                    var prev = previous.GetValueOrDefault(p.Pid);
                    var calls = callsCounted.GetValueOrDefault(p.HostPath) || session.Targets.Any(t => t.CountsCalls && SameFile(t.Target.AttachPath, p.HostPath));
                    rows.Add(new StatRow(p.Pid, p.Version, p.CommandLine, dt, calls ? cur.Calls - prev.Calls : null, cur.Gc - prev.Gc, cur.Imports - prev.Imports, cur.Audit - prev.Audit));
                }
                var alive = rowsFor.Select(p => p.Pid).ToHashSet();
                foreach (var pid in counts.Keys.Where(k => !alive.Contains(k) && !IsAlive(k))) session.Forget(pid);
                previous = counts;
                last = now;
                writer.Write((ulong)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency)), rows);
                intervals++;
                next += step;
                if (next < now) next = now + step;
                if (ended) break;
            }

            session.Detach();
            stderr.WriteLine($"Detached after {clock.Elapsed.TotalSeconds:0.00} s: {intervals} interval{(intervals == 1 ? "" : "s")} reported");
            stderr.Flush();
            if (targets?.Child is { } child)
            {
                if (stop.Requested && !child.HasExited) stop.ForwardTo(child.Pid);
                return child.WaitForExit();
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static bool SameFile(string a, string b)
    {
        if (a == b) return true;
        static string Real(string p)
        {
            try { return new FileInfo(p).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(p); }
            catch (IOException) { return p; }
        }
        return Real(a) == Real(b);
    }

    private static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");
}
