using System.Text;
using Pyprobe.Python.Metrics;

namespace Pyprobe.Cli.Output.Metrics;

/// <summary>
/// A <see cref="FleetSnapshot"/> as Prometheus metrics. The body is rendered once per snapshot and format; each
/// response only adds the exporter's own scrape timing and, for OpenMetrics, the closing <c># EOF</c>.
/// </summary>
internal static class FleetExposition
{
    /// <summary>Command lines longer than this are cut: a label value is kept in every sample of the series.</summary>
    public const int MaxCommandLength = 256;

    public static string Body(FleetSnapshot snapshot, ExpositionFormat format)
    {
        var text = new StringBuilder(4096);
        var w = new MetricFamilyWriter(text, format);
        var processes = snapshot.Processes;

        w.Family("pyprobe_process_info", "info", "A Python process pyprobe watches: its interpreter version and command line.");
        foreach (var p in processes)
            w.Label("pid", p.Pid).Label("version", p.Version).Label("command", Cut(p.Command)).Sample("pyprobe_process_info", 1UL);

        w.Family("pyprobe_function_calls_total", "counter", "Calls of a Python function (returns seen by the function probes); functions outside the top N per process are summed as function=\"<other>\".");
        foreach (var p in processes)
            foreach (var f in p.Functions ?? [])
                FunctionLabels(w, p, f).Sample("pyprobe_function_calls_total", f.Calls);

        w.Family("pyprobe_function_duration_seconds", "histogram", "Wall-clock time from a function's entry to its return (inclusive of callees), for calls whose entry was seen.", "seconds");
        foreach (var p in processes)
            foreach (var f in p.Functions ?? [])
                if (f.Durations is { } d)
                    FunctionLabels(w, p, f).Histogram("pyprobe_function_duration_seconds", d.Counts, DurationHistogram.BoundsNs, d.Count, d.SumSeconds);

        w.Family("pyprobe_cpu_samples_total", "counter", "CPU-clock samples that found this function running (innermost Python frame); divide the rate by pyprobe_cpu_sample_rate_hertz for CPU seconds per second.");
        foreach (var p in processes)
            foreach (var c in p.Cpu)
                w.Label("pid", p.Pid).Label("function", c.Function).Label("file", c.File).Sample("pyprobe_cpu_samples_total", c.Samples);

        w.Family("pyprobe_gc_collections_total", "counter", "Garbage collections (gc__start paired with gc__done) per generation.");
        foreach (var p in processes)
            foreach (var g in p.Gc ?? [])
                w.Label("pid", p.Pid).Label("generation", g.Generation).Sample("pyprobe_gc_collections_total", g.Collections);

        w.Family("pyprobe_gc_pause_seconds", "histogram", "How long each garbage collection ran.", "seconds");
        foreach (var p in processes)
            foreach (var g in p.Gc ?? [])
                w.Label("pid", p.Pid).Label("generation", g.Generation)
                    .Histogram("pyprobe_gc_pause_seconds", g.Pauses.Counts, DurationHistogram.BoundsNs, g.Pauses.Count, g.Pauses.SumSeconds);

        w.Family("pyprobe_imports_total", "counter", "Modules loaded (import__find__load__start; imports answered from sys.modules are not loads).");
        foreach (var p in processes)
            if (p.Imports is { } imports)
                w.Label("pid", p.Pid).Sample("pyprobe_imports_total", imports);

        w.Family("pyprobe_audit_events_total", "counter", "PEP 578 audit events by name; names outside the top N per process are summed as event=\"<other>\".");
        foreach (var p in processes)
            foreach (var a in p.Audit ?? [])
                w.Label("pid", p.Pid).Label("event", a.Event).Sample("pyprobe_audit_events_total", a.Count);

        if (processes.Any(p => p.AsyncioTasks is not null))
        {
            w.Family("pyprobe_asyncio_tasks", "gauge", "Pending asyncio tasks of the process (serve --asyncio), read from its memory at the snapshot: a count that only grows is a task leak.");
            foreach (var p in processes)
                if (p.AsyncioTasks is int tasks)
                    w.Label("pid", p.Pid).Sample("pyprobe_asyncio_tasks", (ulong)tasks);
        }

        w.Family("pyprobe_events_lost_total", "counter", "Records the kernel could not hand over because a ring buffer was full (source=events: gc, imports, audit; source=samples: CPU samples).");
        w.Label("source", "events").Sample("pyprobe_events_lost_total", snapshot.EventsLost);
        w.Label("source", "samples").Sample("pyprobe_events_lost_total", snapshot.SamplesLost);

        w.Family("pyprobe_processes_attached", "gauge", "Python processes watched now.");
        w.Sample("pyprobe_processes_attached", (ulong)processes.Count);
        w.Family("pyprobe_interpreters_attached", "gauge", "Interpreter files (python binaries, libpython) carrying pyprobe's probe programs.");
        w.Sample("pyprobe_interpreters_attached", (ulong)snapshot.BinariesAttached);
        w.Family("pyprobe_cpu_sample_rate_hertz", "gauge", "CPU-clock samples per second per CPU; 0 when sampling is off.", "hertz");
        w.Sample("pyprobe_cpu_sample_rate_hertz", (ulong)snapshot.SampleRate);
        w.Family("pyprobe_snapshots_total", "counter", "Times the kernel side was read into a new snapshot (scrapes serve the latest).");
        w.Sample("pyprobe_snapshots_total", (ulong)snapshot.Sequence);
        w.Family("pyprobe_collect_duration_seconds", "gauge", "How long reading the kernel maps and rings into the latest snapshot took.", "seconds");
        w.Sample("pyprobe_collect_duration_seconds", snapshot.CollectSeconds);
        w.Family("pyprobe_snapshot_timestamp_seconds", "gauge", "When the latest snapshot was taken (Unix time).", "seconds");
        w.Sample("pyprobe_snapshot_timestamp_seconds", snapshot.Taken.ToUnixTimeMilliseconds() / 1000.0);
        return text.ToString();
    }

    /// <summary>What each response adds to the body: the previous scrape's duration, and the end marker.</summary>
    public static string Tail(ExpositionFormat format, double previousScrapeSeconds)
    {
        var text = new StringBuilder(256);
        var w = new MetricFamilyWriter(text, format);
        w.Family("pyprobe_scrape_duration_seconds", "gauge", "How long the previous /metrics response took, from its request line to its last byte.", "seconds");
        w.Sample("pyprobe_scrape_duration_seconds", previousScrapeSeconds);
        w.End();
        return text.ToString();
    }

    private static MetricFamilyWriter FunctionLabels(MetricFamilyWriter w, ProcessMetrics p, FunctionCalls f) =>
        w.Label("pid", p.Pid).Label("function", f.Function).Label("file", f.File).Label("line", f.Line is { } line ? line.ToString(System.Globalization.CultureInfo.InvariantCulture) : "");

    private static string Cut(string command) => command.Length <= MaxCommandLength ? command : command[..(MaxCommandLength - 1)] + "…";
}
