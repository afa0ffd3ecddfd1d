using Pyprobe.Serve.Tests.Support;

namespace Pyprobe.Serve.Tests;

/// <summary>
/// Debian's Prometheus scrapes pyprobe serve (every Python on the machine, the default) every second while a
/// workload with known counts runs under Debian's CPython 3.9 (USDT probes); PromQL answers are checked exactly.
/// </summary>
public sealed class PrometheusScrapeTests
{
    [Fact]
    public void PromQlAnswersMatchTheWorkloadsKnownCounts()
    {
        using var serve = ServeProcess.Start();
        using var prometheus = PrometheusServer.Start(serve.Port);
        if (prometheus is null) return;
        using var workload = KnownCountsWorkload.Start("3.9");
        var pid = $"pid=\"{workload.Pid}\"";

        // The workload waits on stdin; once two snapshots past its "ready" show it attached, nothing more happens in it until "go".
        var ready = serve.WaitUntilAttached(workload.Pid);
        var importsBefore = MetricsText.Value(ready, "pyprobe_imports_total", pid);
        Assert.NotNull(importsBefore);
        Assert.Null(MetricsText.Value(ready, "pyprobe_audit_events_total", pid, "event=\"pyprobe.test\""));

        workload.Go();
        var timeout = TimeSpan.FromSeconds(30);
        var q = $"{{{pid}}}";
        Assert.Equal(8361, prometheus.WaitFor($"pyprobe_function_calls_total{{{pid},function=\"fib\"}}", 8361, timeout));
        Assert.Equal(8361, prometheus.WaitFor($"pyprobe_function_duration_seconds_count{{{pid},function=\"fib\"}}", 8361, timeout));
        Assert.Equal(8361, prometheus.WaitFor($"pyprobe_function_duration_seconds_bucket{{{pid},function=\"fib\",le=\"+Inf\"}}", 8361, timeout));
        Assert.Equal(7, prometheus.WaitFor($"pyprobe_gc_collections_total{{{pid},generation=\"2\"}}", 7, timeout));
        Assert.Equal(7, prometheus.WaitFor($"pyprobe_gc_pause_seconds_count{{{pid},generation=\"2\"}}", 7, timeout));
        Assert.Equal(importsBefore + 3, prometheus.WaitFor($"pyprobe_imports_total{q}", importsBefore!.Value + 3, timeout));
        Assert.Equal(5, prometheus.WaitFor($"pyprobe_audit_events_total{{{pid},event=\"pyprobe.test\"}}", 5, timeout));
        Assert.Equal(1, prometheus.WaitFor($"count(pyprobe_process_info{{{pid},version=\"3.9.2\"}})", 1, timeout));
        Assert.Equal(0, prometheus.WaitFor("sum(pyprobe_events_lost_total)", 0, timeout));

        // About one second of CPU in spin() at 19 Hz: some samples, not more than the time allows.
        var spin = prometheus.Query($"sum(pyprobe_cpu_samples_total{{{pid},function=\"spin\"}})");
        Assert.Single(spin);
        Assert.InRange(spin[0].Value, 5, 40);

        var scrape = prometheus.Query("max_over_time(scrape_duration_seconds{job=\"pyprobe\"}[1m])");
        var samples = prometheus.Query("scrape_samples_scraped{job=\"pyprobe\"}");
        Console.WriteLine($"serve: slowest scrape in the last minute {scrape[0].Value * 1000:0.##} ms, {samples[0].Value} samples per scrape, pyprobe RSS {serve.ResidentKiB() / 1024.0:0.#} MiB");

        // An exited process is dropped at the next poll.
        workload.Dispose();
        Assert.Equal(0, prometheus.WaitFor($"count(pyprobe_process_info{q}) or vector(0)", 0, timeout));
    }
}
