using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe gc (-p PID... | --all [PATH] | -- CMD ARGS...): every garbage collection with its generation,
/// pause and objects collected (gc__start/gc__done paired per thread), then a per-generation summary and a
/// pause histogram. bcc's pythongc printed "None" for the collected count; this reads gc__done's argument.
/// </summary>
internal static class GcCommand
{
    public static Command Create() => ProbeStreamCommand.Create("gc",
        "Show every garbage collection (generation, pause, objects collected), then a per-generation summary and a pause histogram.",
        GcPairing.Probes, [], _ =>
        {
            var pairing = new GcPairing();
            var summary = new GcSummary();
            return new ProbeStreamHandling(writer => (in ProbeEvent e) =>
            {
                if (pairing.Apply(e) is not { } collection) return;
                summary.Add(collection);
                writer.Collection(collection);
            }, writer => writer.Summary(summary));
        });
}
