using System.Diagnostics;
using Pyprobe.Cli.Tests;
using Pyprobe.Serve.Tests.Support;

namespace Pyprobe.Serve.Tests;

/// <summary>
/// --top bounds the function series per process (the rest summed into function="&lt;other&gt;"), and a CPython
/// without probes (pyenv 3.12) is still there: its info and CPU samples, no probe metrics.
/// </summary>
public sealed class CardinalityAndNoProbesTests
{
    [Fact]
    public void TopBoundsTheSeriesAndAPythonWithoutProbesHasInfoAndCpuSamples()
    {
        var pyenv = CachedPythons.Pyenv().FirstOrDefault(p => p.EndsWith("python3.12", StringComparison.Ordinal));
        if (pyenv is null) Assert.Fail("pyenv CPython 3.12 is missing (/root/.pyenv/versions/3.12.*)");
        // The workload starts first: had serve already probes on its binary (another Debian 3.9 Python running), it would
        // see the workload from its exec, and its start-up imports would outrank fib.
        using var busy = new BusyPython(pyenv!);
        using var workload = KnownCountsWorkload.Start("3.9");
        using var serve = ServeProcess.Start("--top", "2", "--rate", "49");
        serve.WaitUntilAttached(workload.Pid);
        workload.Go();
        var pid = $"pid=\"{workload.Pid}\"";
        var busyPid = $"pid=\"{busy.Id}\"";
        var text = "";
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            text = MetricsText.Get(serve.MetricsUrl);
            if (MetricsText.Value(text, "pyprobe_function_calls_total", pid, "function=\"fib\"") == 8361 &&
                MetricsText.Value(text, "pyprobe_cpu_samples_total", busyPid, "function=\"busy\"") > 0) break;
            Thread.Sleep(250);
        }
        Assert.Equal(8361, MetricsText.Value(text, "pyprobe_function_calls_total", pid, "function=\"fib\""));
        var series = text.Split('\n').Where(l => l.StartsWith("pyprobe_function_calls_total{", StringComparison.Ordinal) && l.Contains(pid, StringComparison.Ordinal)).ToList();
        Assert.InRange(series.Count, 2, 2 * 2 + 1);
        Assert.Contains(series, l => l.Contains("function=\"<other>\"", StringComparison.Ordinal));
        Assert.True(MetricsText.Value(text, "pyprobe_function_calls_total", pid, "function=\"<other>\"") > 0);

        Assert.Equal(1, MetricsText.Value(text, "pyprobe_process_info", busyPid, "version=\"3.12.1\""));
        Assert.True(MetricsText.Value(text, "pyprobe_cpu_samples_total", busyPid, "function=\"busy\"") > 0, text);
        Assert.Null(MetricsText.Value(text, "pyprobe_function_calls_total", busyPid));
        Assert.Null(MetricsText.Value(text, "pyprobe_imports_total", busyPid));
        Assert.Null(MetricsText.Value(text, "pyprobe_gc_collections_total", busyPid));
    }

    /// <summary>pyenv's python spinning in busy() until the test ends.</summary>
    private sealed class BusyPython : IDisposable
    {
        private readonly Process _process;

        public BusyPython(string python)
        {
            var script = Path.Combine(AppContext.BaseDirectory, "Workloads", "busy.py");
            _process = Process.Start(new ProcessStartInfo(python, [script]) { RedirectStandardOutput = true, UseShellExecute = false })!;
            var ready = _process.StandardOutput.ReadLineAsync();
            if (!ready.Wait(TimeSpan.FromSeconds(30)) || ready.Result != "ready")
            {
                Dispose();
                Assert.Fail($"{python} did not start");
            }
        }

        public int Id => _process.Id;

        public void Dispose()
        {
            try { _process.Kill(); _process.WaitForExit(5000); } catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }
}
