using System.CommandLine;
using Pyprobe.Cli.Commands.Gc;
using Pyprobe.Cli.Output;
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
            var json = output.ReadFormat(result) == OutputFormat.Json;
            Privileges.RequireTracing("gc");
            var stderr = result.InvocationConfiguration.Error;
            var probes = new[] { "gc__start", "gc__done" };
            using var run = EventRun.Start(selection, probes, "gc", targets => new TraceSessionSource(TraceSession.Attach(targets,
                probes.Select(p => PythonProbeCatalog.Find(p)!).ToList(), new TraceSessionOptions(ringBytes, Tids: tids, EntryGate: false))), stderr);
            var session = ((TraceSessionSource)run.Source).Session;
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var writer = new GcWriter(sink.Writer, json, run.ManyProcesses, new EventClock());
            var started = new Dictionary<(int, int), (ulong Ts, int Generation)>();
            long delivered = 0;
            run.Loop(record =>
            {
                delivered++;
                var e = session.Decode(record);
                var key = (e.Pid, e.Tid);
                if (e.Name == "gc__start")
                    started[key] = (e.Timestamp, (int)e.Value(0));
                else if (started.Remove(key, out var start))
                    writer.Write(new GcCollection(start.Ts, e.Pid, e.Tid, start.Generation, e.Timestamp - start.Ts, e.Value(0)));
            }, duration, sink.Writer.Flush);
            writer.WriteSummary();
            sink.Writer.Flush();
            return run.Complete(delivered);
        });
        return command;
    }
}
