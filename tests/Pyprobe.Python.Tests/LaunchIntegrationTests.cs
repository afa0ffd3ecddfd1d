using Pyprobe.Python.Launching;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Python.Tests;

/// <summary>
/// `-- CMD`: the command is held before it runs, probes attach to its pid, and even its first
/// Python call is seen after the exec.
/// </summary>
public class LaunchIntegrationTests
{
    private const string Script = "import sys\ndef first():\n    pass\nfirst()\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(18)\nsys.exit(7)\n";

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.15")]
    public void HeldCommandIsTracedFromItsFirstCall(string version)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        var command = python.DirectCommand();
        command.AddRange(["-c", Script]);
        Assert.Equal(python.Binary, LaunchedInterpreter.Resolve(command));

        using var child = HeldCommand.Start(command);
        var target = TargetResolver.ForLaunchedProcess(python.Binary, child.Pid);
        var names = new List<string>();
        using (var session = TraceSession.Attach([target], [PythonProbeCatalog.Find("function__entry")!]))
        {
            child.Resume();
            Assert.Equal(7, child.WaitForExit());
            session.Detach();
            while (session.Reader.Drain(record =>
            {
                var e = session.Decode(record);
                Assert.Equal(child.Pid, e.Pid);
                if (e.String(0) == "<string>") names.Add(e.String(1));
            }) > 0) { }
            Assert.Equal(0UL, session.Lost);
        }
        // 3.15 reports the <module> frame too; both see `first` before any fib call.
        var userCalls = names.Where(n => n != "<module>").ToList();
        Assert.Equal("first", userCalls[0]);
        Assert.Equal(8361, userCalls.Count(n => n == "fib"));
    }

    [Fact]
    public void ShellScriptLaunchersAreRefusedWithAClearMessage()
    {
        var python = CachedPythons.Get("3.9");
        var error = Assert.Throws<Pyprobe.Usdt.UsdtException>(() => LaunchedInterpreter.Resolve([python.Launcher, "-c", "pass"]));
        Assert.Contains("not a Python binary", error.Message);
    }
}
