using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Python.Tests;

/// <summary>
/// File and function names are sent once and then only named by address and fingerprint. Code objects
/// freed and created again land at reused addresses with other names: every event must still carry
/// its own names.
/// </summary>
public class StringInterningIntegrationTests
{
    private const string Churn = """
        def make(i):
            ns = {}
            exec(compile("def f_%d():\n    return %d\n" % (i, i), "<gen-%d>" % (i % 7), "exec"), ns)
            return ns["f_%d" % i]
        for i in range(3000):
            make(i)()
        """;

    [Theory]
    [InlineData("3.9")]
    [InlineData("3.11")]
    [InlineData("3.15")]
    public void NamesStayRightWhileCodeObjectsAreFreedAndAddressesReused(string version)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Launcher, Churn.Replace("\r", ""));
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        var generated = new List<(string File, string Name)>();
        var makeCalls = 0;
        using (var session = TraceSession.Attach(targets, [PythonProbeCatalog.Find("function__entry")!], new TraceSessionOptions(InternStrings: true, AllowHookWrite: false)))
        {
            workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
            session.Detach();
            while (session.Reader.Drain(record =>
            {
                var e = session.Decode(record);
                var name = e.String(1);
                if (name.StartsWith("f_", StringComparison.Ordinal)) generated.Add((e.String(0), name));
                else if (name == "make" && e.String(0) == "<string>") makeCalls++;
            }) > 0) { }
            Assert.Equal(0UL, session.Lost);
            Assert.Equal(0, session.SentStrings.Unresolved);
            // At least "make" is sent once and then reused for each of its other 2999 calls (its file
            // name too where CPython computed that string's hash).
            Assert.True(session.SentStrings.Reused >= 2999, $"only {session.SentStrings.Reused} names were reused");
        }

        Assert.Equal(3000, makeCalls);
        Assert.Equal(Enumerable.Range(0, 3000).Select(i => ($"<gen-{i % 7}>", $"f_{i}")), generated);
    }

    [Fact]
    public void InterningIsOffByDefault()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Launcher, "def leaf():\n    pass\nfor _ in range(100):\n    leaf()\n");
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        var leaves = 0;
        using var session = TraceSession.Attach(targets, [PythonProbeCatalog.Find("function__entry")!]);
        workload.RunMeasuredPart(TimeSpan.FromSeconds(30));
        session.Detach();
        while (session.Reader.Drain(record => { if (session.Decode(record).String(1) == "leaf") leaves++; }) > 0) { }
        Assert.Equal(100, leaves);
        Assert.Equal(0, session.SentStrings.Reused);
    }
}
