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

    /// <param name="how">"interned": every string checked against its str header (InternStrings); "pairs": the default,
    /// the name-pair memo (FunctionNamePairs: nothing read for a pair seen before, pairs dropped where code objects die).</param>
    [Theory]
    [InlineData("3.9", "interned")]
    [InlineData("3.11", "interned")]
    [InlineData("3.15", "interned")]
    [InlineData("3.9", "pairs")]
    [InlineData("3.11", "pairs")]
    public void NamesStayRightWhileCodeObjectsAreFreedAndAddressesReused(string version, string how)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Launcher, Churn.Replace("\r", ""));
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        var generated = new List<(string File, string Name)>();
        var makeCalls = 0;
        var options = how == "interned" ? new TraceSessionOptions(InternStrings: true, AllowHookWrite: false, RememberNamePairs: false) : new TraceSessionOptions(AllowHookWrite: false);
        using (var session = TraceSession.Attach(targets, [PythonProbeCatalog.Find("function__entry")!], options))
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

    /// <summary>
    /// By default names go by reference only where the name-pair memo can be kept right (3.8–3.11 and 3.15, a binary that
    /// says where code objects die): on 3.9 and 3.15 a function called 100 times sends its two names once and 99 times by
    /// reference (198 strings resolved from earlier records); with the memo turned off every event copies them
    /// (interning stays off by default).
    /// </summary>
    [Theory]
    [InlineData("3.9", true, 198)]
    [InlineData("3.9", false, 0)]
    [InlineData("3.15", true, 198)]
    [InlineData("3.15", false, 0)]
    public void NamesGoByReferenceByDefaultOnlyWhereThePairMemoIsRight(string version, bool rememberPairs, int reused)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get(version);
        using var workload = new PythonWorkload(python.Launcher, "def leaf():\n    pass\nfor _ in range(100):\n    leaf()\n");
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        var leaves = 0;
        using var session = TraceSession.Attach(targets, [PythonProbeCatalog.Find("function__entry")!], new TraceSessionOptions(AllowHookWrite: false, RememberNamePairs: rememberPairs));
        workload.RunMeasuredPart(TimeSpan.FromSeconds(30));
        session.Detach();
        var leafReused = 0L;
        while (session.Reader.Drain(record =>
        {
            var e = session.Decode(record);
            var before = session.SentStrings.Reused;
            var name = e.String(1);
            _ = e.String(0);
            if (name != "leaf") return;
            leaves++;
            leafReused += session.SentStrings.Reused - before;
        }) > 0) { }
        Assert.Equal(100, leaves);
        Assert.Equal(0, session.SentStrings.Unresolved);
        Assert.Equal(reused, leafReused);
    }
}
