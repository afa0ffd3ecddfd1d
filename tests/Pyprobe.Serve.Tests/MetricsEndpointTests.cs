using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Pyprobe.Serve.Tests.Support;
using Pyprobe.Viewers.Tests.Support;

namespace Pyprobe.Serve.Tests;

/// <summary>/metrics read directly: the text format checked by promtool, OpenMetrics on request, slow clients, other paths.</summary>
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task TextFormatPassesPromtoolAndOpenMetricsEndsWithEof()
    {
        using var serve = ServeProcess.Start();
        using var workload = KnownCountsWorkload.Start("3.9");
        serve.WaitUntilAttached(workload.Pid);
        workload.Go();
        var text = WaitUntil(serve, t => MetricsText.Value(t, "pyprobe_function_calls_total", $"pid=\"{workload.Pid}\"", "function=\"fib\"") == 8361);
        Assert.Contains("# TYPE pyprobe_function_calls_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE pyprobe_function_duration_seconds histogram\n", text, StringComparison.Ordinal);

        var promtool = RequiredTool.Find("promtool", "Debian's prometheus", "/usr/bin/promtool");
        if (promtool is not null)
        {
            var info = new ProcessStartInfo(promtool, ["check", "metrics"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            using var check = Process.Start(info)!;
            check.StandardInput.Write(text);
            check.StandardInput.Close();
            var output = check.StandardOutput.ReadToEnd() + check.StandardError.ReadToEnd();
            Assert.True(check.WaitForExit(30_000));
            Assert.True(check.ExitCode == 0, $"promtool check metrics: {output}");
        }

        using var http = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Get, serve.MetricsUrl);
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("application/openmetrics-text;version=1.0.0;q=0.5"));
        request.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("text/plain;version=0.0.4;q=0.4"));
        using var response = await http.SendAsync(request);
        Assert.Equal("application/openmetrics-text", response.Content.Headers.ContentType!.MediaType);
        var open = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n# EOF\n", open, StringComparison.Ordinal);
        Assert.Contains("# TYPE pyprobe_function_calls counter\n", open, StringComparison.Ordinal);
        Assert.Contains("# TYPE pyprobe_process info\n", open, StringComparison.Ordinal);
        Assert.Contains("# UNIT pyprobe_gc_pause_seconds seconds\n", open, StringComparison.Ordinal);
        Assert.Equal(8361, MetricsText.Value(open, "pyprobe_function_calls_total", $"pid=\"{workload.Pid}\"", "function=\"fib\""));

        using var missing = await http.GetAsync($"http://127.0.0.1:{serve.Port}/nothing");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }

    /// <summary>serve --count: the same exact call counters, and no duration series (nothing was timed).</summary>
    [Fact]
    public void CountsAloneExportExactCallsAndNoDurations()
    {
        using var serve = ServeProcess.Start("--count");
        using var workload = KnownCountsWorkload.Start("3.9");
        serve.WaitUntilAttached(workload.Pid);
        workload.Go();
        var text = WaitUntil(serve, t => MetricsText.Value(t, "pyprobe_function_calls_total", $"pid=\"{workload.Pid}\"", "function=\"fib\"") == 8361);
        var durations = text.Split('\n').Where(l => l.StartsWith("pyprobe_function_duration_seconds", StringComparison.Ordinal) && l.Contains($"pid=\"{workload.Pid}\"", StringComparison.Ordinal)).ToList();
        Assert.True(durations.Count == 0, string.Join("\n", durations));
        // Read again later: running totals, not intervals.
        Thread.Sleep(1500);
        Assert.Equal(8361, MetricsText.Value(MetricsText.Get(serve.MetricsUrl), "pyprobe_function_calls_total", $"pid=\"{workload.Pid}\"", "function=\"fib\""));
    }

    [Fact]
    public void HungClientsDelayNeitherOtherScrapesNorTheKernelSide()
    {
        using var serve = ServeProcess.Start();
        var before = MetricsText.Value(MetricsText.Get(serve.MetricsUrl), "pyprobe_snapshots_total")!.Value;
        // Ten clients that connect and never send a byte, and ten that send a request and never read the answer.
        var hung = new List<Socket>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 1024 };
                socket.Connect("127.0.0.1", serve.Port);
                if (i % 2 == 1) socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8);
                hung.Add(socket);
            }
            var slowest = TimeSpan.Zero;
            var last = before;
            for (var i = 0; i < 10; i++)
            {
                var clock = Stopwatch.StartNew();
                var text = MetricsText.Get(serve.MetricsUrl);
                slowest = TimeSpan.FromTicks(Math.Max(slowest.Ticks, clock.Elapsed.Ticks));
                Assert.Contains("pyprobe_processes_attached", text, StringComparison.Ordinal);
                last = MetricsText.Value(text, "pyprobe_snapshots_total")!.Value;
                Thread.Sleep(300);
            }
            Console.WriteLine($"serve: slowest of 10 scrapes beside 20 hung clients {slowest.TotalMilliseconds:0.#} ms; snapshots {before} → {last}");
            Assert.True(slowest < TimeSpan.FromSeconds(2), $"a scrape took {slowest} (the hung clients hold their connections for 10 s)");
            // The collector kept taking a snapshot a second while the hung clients held their connections.
            Assert.True(last - before >= 2, $"snapshots went from {before} to {last} in 3 s");
        }
        finally
        {
            foreach (var socket in hung) socket.Dispose();
        }
    }

    private static string WaitUntil(ServeProcess serve, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var text = "";
        while (DateTime.UtcNow < deadline)
        {
            text = MetricsText.Get(serve.MetricsUrl);
            if (done(text)) return text;
            Thread.Sleep(250);
        }
        Assert.Fail($"never seen in /metrics; last:\n{text}\n{serve.Stderr}");
        return text;
    }
}
