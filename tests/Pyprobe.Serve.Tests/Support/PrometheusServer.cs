using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pyprobe.Viewers.Tests.Support;

namespace Pyprobe.Serve.Tests.Support;

/// <summary>
/// Debian's prometheus on a loopback port with a generated config (one job scraping pyprobe every second) and a
/// temporary storage folder; queried through its HTTP API. Null from <see cref="Start"/> when it is not installed
/// (a failure under CI=true).
/// </summary>
internal sealed class PrometheusServer : IDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly Process _process;
    private readonly string _folder;
    private readonly StringBuilder _log = new();

    public string BaseUrl { get; }
    public string Log { get { lock (_log) return _log.ToString(); } }

    private PrometheusServer(Process process, string folder, string baseUrl)
    {
        (_process, _folder, BaseUrl) = (process, folder, baseUrl);
    }

    public static PrometheusServer? Start(int targetPort)
    {
        var binary = RequiredTool.Find("prometheus", "Debian's prometheus", "/usr/bin/prometheus");
        if (binary is null) return null;
        var folder = Directory.CreateTempSubdirectory("pyprobe-prometheus-").FullName;
        File.WriteAllText(Path.Combine(folder, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: pyprobe
                static_configs:
                  - targets: ['127.0.0.1:{targetPort}']
            """);
        var port = FreePort.Take();
        var info = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { $"--config.file={folder}/prometheus.yml", $"--storage.tsdb.path={folder}/data", $"--web.listen-address=127.0.0.1:{port}" })
            info.ArgumentList.Add(a);
        var server = new PrometheusServer(Process.Start(info)!, folder, $"http://127.0.0.1:{port}");
        server._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        server._process.BeginErrorReadLine();
        server._process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (Http.GetAsync(server.BaseUrl + "/-/ready").GetAwaiter().GetResult().IsSuccessStatusCode) return server;
            }
            catch (HttpRequestException) { }
            Thread.Sleep(200);
        }
        server.Dispose();
        Assert.Fail($"prometheus did not become ready: {server.Log}");
        return null;
    }

    /// <summary>An instant query; each result's labels and value.</summary>
    public List<(Dictionary<string, string> Labels, double Value)> Query(string promql)
    {
        var json = Http.GetStringAsync($"{BaseUrl}/api/v1/query?query={Uri.EscapeDataString(promql)}").GetAwaiter().GetResult();
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("success", doc.RootElement.GetProperty("status").GetString());
        var results = new List<(Dictionary<string, string>, double)>();
        foreach (var r in doc.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            results.Add((labels, double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)));
        }
        return results;
    }

    /// <summary>The single value of <paramref name="promql"/> once it equals <paramref name="expected"/> (new scrapes arrive every second), or what it was at the deadline.</summary>
    public double? WaitFor(string promql, double expected, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        double? last = null;
        while (true)
        {
            var results = Query(promql);
            last = results.Count == 1 ? results[0].Value : null;
            if (last == expected || DateTime.UtcNow > deadline) return last;
            Thread.Sleep(500);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }
}
