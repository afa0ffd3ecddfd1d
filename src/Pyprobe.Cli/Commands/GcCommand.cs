using System.CommandLine;
using Pyprobe.Cli.Commands.Running;
using Pyprobe.Python.Events;
using Pyprobe.Python.Tracing;
using Pyprobe.Cli.Output.Formats;

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
        var output = new OutputOptions(OutputKind.EventStream);
        var events = new EventOptions();
        var command = new Command("gc", "Show every garbage collection (generation, pause, objects collected), then a per-generation summary and a pause histogram.");
        target.AddTo(command);
        events.AddTo(command);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var settings = events.Read(result);
            Privileges.RequireTracing("gc");
            var pairing = new GcPairing();
            var summary = new GcSummary();
            return ProbeStreamRun.Run(result, selection, settings, output, GcPairing.Probes, "gc",
                writer => (in ProbeEvent e) =>
                {
                    if (pairing.Apply(e) is not { } collection) return;
                    summary.Add(collection);
                    writer.Collection(collection);
                },
                writer => writer.Summary(summary));
        });
        return command;
    }
}
