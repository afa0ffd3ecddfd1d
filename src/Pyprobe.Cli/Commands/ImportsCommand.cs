using System.CommandLine;
using Pyprobe.Cli.Commands.Running;
using Pyprobe.Cli.Targets;
using Pyprobe.Python.Events;
using Pyprobe.Cli.Output;
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
            var json = output.ReadFormat(result) == OutputFormat.Json;
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
            var writer = new ImportsWriter(sink.Writer, json, run.Targets.ManyProcesses, slowest);
            var tracker = new ImportTracker();
            long delivered = 0;
            ProbeEventHandler handler = (in ProbeEvent e) =>
            {
                delivered++;
                if (tracker.Apply(e) is { } load) writer.Write(load);
            };
            run.Stream(() => session.Drain(handler), sink.Writer.Flush);
            writer.WriteSummary();
            sink.Writer.Flush();
            return run.Complete(run.EventReport(delivered, session.Lost));
        });
        return command;
    }
}
