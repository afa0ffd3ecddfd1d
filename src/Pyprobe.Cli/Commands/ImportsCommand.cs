using System.CommandLine;
using Pyprobe.Cli.Commands.Running;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Events;
using Pyprobe.Cli.Output;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe imports (-p PID... | --all [PATH] | -- CMD ARGS...): python -X importtime for a running process.
/// Every module loaded (CPython's import probes fire only for modules not yet in sys.modules, on the C import
/// path), its load time with and without the modules it imported, its nesting and whether it was found; at the
/// end the slowest modules.
/// </summary>
internal static class ImportsCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        var output = new OutputOptions();
        var events = new EventOptions();
        var top = new Option<int>("--top") { Description = "How many of the slowest modules the summary lists (default 10).", HelpName = "N", DefaultValueFactory = _ => 10 };
        var command = new Command("imports", "Show each module loaded with its load time (self and cumulative), nesting and found flag, like python -X importtime for a running process; then the slowest modules.");
        target.AddTo(command);
        events.AddTo(command);
        command.Options.Add(top);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var (tids, duration, ringBytes) = events.Read(result);
            var slowest = result.GetValue(top);
            if (slowest <= 0) throw new UsageException("--top must be positive");
            var format = output.ReadFormat(result);
            Privileges.RequireTracing("imports");
            var stderr = result.InvocationConfiguration.Error;
            var probes = ImportTracker.Probes;
            using var run = TracingRun<TraceSession>.Start(TargetSelector.Resolve(selection), targets =>
            {
                var usable = RequiredProbes.Usable(targets.Targets, probes, "imports", stderr);
                var session = TraceSession.Attach(usable, probes.Select(p => PythonProbeCatalog.Find(p)!).ToList(), new TraceSessionOptions(ringBytes, Tids: tids, EntryGate: false));
                return new Attachment<TraceSession>(session, string.Join(", ", probes), TargetText.Where(usable));
            }, duration, stderr);
            var session = run.Session;
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var writer = EventStreamWriters.For(format, new EventStreamContext(sink, new EventClock(), TimeFormat.Seconds, run.Targets.ManyProcesses));
            var tracker = new ImportTracker();
            var summary = new ImportSummary(slowest);
            long delivered = 0;
            ProbeEventHandler handler = (in ProbeEvent e) =>
            {
                delivered++;
                if (tracker.Apply(e) is not { } load) return;
                summary.Add(load);
                writer.ModuleLoaded(load);
            };
            run.Stream(() => session.Drain(handler), sink.Flush, () => sink.FlushIfOlderThan(EventBuffer.MaxDelay));
            writer.Summary(summary);
            sink.Flush();
            return run.Complete(run.EventReport(delivered, session.Lost));
        });
        return command;
    }
}
