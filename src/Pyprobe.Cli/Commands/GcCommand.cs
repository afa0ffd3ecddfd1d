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
/// pyprobe gc (-p PID... | --all [PATH] | -- CMD ARGS...): every garbage collection with its generation,
/// pause and objects collected (gc__start/gc__done paired per thread), then a per-generation summary and a
/// pause histogram. bcc's pythongc printed "None" for the collected count; this reads gc__done's argument.
/// </summary>
internal static class GcCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        var output = new OutputOptions();
        var events = new EventOptions();
        var command = new Command("gc", "Show every garbage collection (generation, pause, objects collected), then a per-generation summary and a pause histogram.");
        target.AddTo(command);
        events.AddTo(command);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var (tids, duration, ringBytes) = events.Read(result);
            var format = output.ReadFormat(result);
            Privileges.RequireTracing("gc");
            var stderr = result.InvocationConfiguration.Error;
            using var run = TracingRun<TraceSession>.Start(TargetSelector.Resolve(selection), targets =>
            {
                var usable = RequiredProbes.Usable(targets.Targets, GcPairing.Probes, "gc", stderr);
                var session = TraceSession.Attach(usable, GcPairing.Probes.Select(p => PythonProbeCatalog.Find(p)!).ToList(), new TraceSessionOptions(ringBytes, Tids: tids, EntryGate: false));
                return new Attachment<TraceSession>(session, string.Join(", ", GcPairing.Probes), TargetText.Where(usable));
            }, duration, stderr);
            var session = run.Session;
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var writer = EventStreamWriters.For(format, new EventStreamContext(sink, new EventClock(), TimeFormat.Seconds, run.Targets.ManyProcesses));
            var pairing = new GcPairing();
            var summary = new GcSummary();
            long delivered = 0;
            ProbeEventHandler handler = (in ProbeEvent e) =>
            {
                delivered++;
                if (pairing.Apply(e) is not { } collection) return;
                summary.Add(collection);
                writer.Collection(collection);
            };
            run.Stream(() => session.Drain(handler), sink.Flush, () => sink.FlushIfOlderThan(EventBuffer.MaxDelay));
            writer.Summary(summary);
            sink.Flush();
            return run.Complete(run.EventReport(delivered, session.Lost));
        });
        return command;
    }
}
