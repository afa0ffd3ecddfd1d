using System.Diagnostics;
using Pyprobe.Serve.Tests.Support;
using Pyprobe.Cli.Tests;

namespace Pyprobe.Serve.Tests;

/// <summary>
/// serve --asyncio: pyprobe_asyncio_tasks follows each process's pending tasks as they come and go. The workload starts
/// with its main task and 10 waiting; told "more", it adds 20; told "done", the 30 finish and the main task alone is
/// left: the gauge reads 11, 31, then 1, on a Python with probes (Debian 3.14) and one without (pyenv 3.12).
/// </summary>
public class AsyncioTasksGaugeTests
{
    private const string Script = """
        import asyncio, sys

        async def wait(event):
            await event.wait()

        async def main():
            loop = asyncio.get_running_loop()
            event = asyncio.Event()
            tasks = [asyncio.ensure_future(wait(event)) for _ in range(10)]
            print("ready", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            tasks += [asyncio.ensure_future(wait(event)) for _ in range(20)]
            print("more", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            event.set()
            await asyncio.gather(*tasks)
            print("done", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)

        asyncio.run(main())
        """;

    [Theory]
    [InlineData("debian:3.14")]
    [InlineData("pyenv:3.12")]
    public void TheGaugeFollowsThePendingTasks(string interpreter)
    {
        var python = interpreter == "pyenv:3.12"
            ? CachedPythons.Pyenv().FirstOrDefault(p => p.EndsWith("python3.12", StringComparison.Ordinal)) ?? throw new InvalidOperationException("pyenv CPython 3.12 is missing")
            : CachedPythons.Get("3.14").LauncherPath;
        var start = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Script);
        using var workload = Process.Start(start)!;
        try
        {
            Assert.Equal("ready", workload.StandardOutput.ReadLine());
            using var serve = ServeProcess.Start("-p", workload.Id.ToString(), "--asyncio", "--refresh", "0.2");
            var pid = $"pid=\"{workload.Id}\"";
            WaitFor(serve, pid, 11);
            workload.StandardInput.WriteLine("more");
            Assert.Equal("more", workload.StandardOutput.ReadLine());
            WaitFor(serve, pid, 31);
            workload.StandardInput.WriteLine("done");
            Assert.Equal("done", workload.StandardOutput.ReadLine());
            WaitFor(serve, pid, 1);
        }
        finally
        {
            workload.Kill();
        }
    }

    private static void WaitFor(ServeProcess serve, string pid, int tasks)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var text = "";
        while (DateTime.UtcNow < deadline)
        {
            text = MetricsText.Get(serve.MetricsUrl);
            if (MetricsText.Value(text, "pyprobe_asyncio_tasks", pid) == tasks) return;
            Thread.Sleep(100);
        }
        Assert.Fail($"pyprobe_asyncio_tasks{{{pid}}} never read {tasks}; last:\n{string.Join('\n', text.Split('\n').Where(l => l.Contains("asyncio", StringComparison.Ordinal)))}\n{serve.Stderr}");
    }
}
