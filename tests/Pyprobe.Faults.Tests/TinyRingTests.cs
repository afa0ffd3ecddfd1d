using Pyprobe.Faults.Tests.Support;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// A ring buffer of one page, flooded on purpose: the events delivered plus the events the kernel
/// reported lost equal the hits the program counted, exactly, and the fib calls among those delivered
/// and lost add up to the calls the program made.
/// </summary>
public class TinyRingTests
{
    private const string Setup = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n";

    [Theory]
    [InlineData(false)] // the reader drains while the burst runs
    [InlineData(true)]  // the reader looks only after the burst
    public void OnePageRingDeliveredPlusLostEqualsHitsExactly(bool readOnlyAfterwards)
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), Setup, "fib(18)\n");
        var targets = TargetResolver.ForProcesses([workload.Pid]);
        long delivered = 0, fib = 0;
        using var session = TraceSession.Attach(targets, [PythonProbeCatalog.Find("function__entry")!], new TraceSessionOptions(RingBufferBytes: 4096));

        void Drain() => session.Reader.Drain(record =>
        {
            delivered++;
            var e = session.Decode(record);
            Assert.Equal(workload.Pid, e.Pid);
            if (e.String(1) == "fib") fib++;
        });

        workload.Go();
        Exception? failure = null;
        var finished = new Thread(() =>
        {
            try { workload.WaitFinished(TimeSpan.FromSeconds(60)); }
            catch (Exception e) { failure = e; }
        });
        finished.Start();
        while (finished.IsAlive)
        {
            if (readOnlyAfterwards) Thread.Sleep(10);
            else
            {
                session.Reader.WaitForData(1);
                Drain();
            }
        }
        if (failure is not null) throw failure;
        session.Detach();
        while (session.Reader.Drain(record =>
        {
            delivered++;
            if (session.Decode(record).String(1) == "fib") fib++;
        }) > 0) { }

        var hits = session.Hits;
        var lost = session.Lost;
        Assert.True(lost > 0, $"nothing was lost: {delivered} delivered, {hits} hits");
        Assert.True(delivered > 0);
        Assert.Equal(hits, (ulong)delivered + lost);
        // fib(18) makes 8361 calls: each one is a hit, delivered or counted lost.
        Assert.InRange(hits, 8361UL, 8361UL + 50);
        Assert.InRange(fib, 1, 8361);
    }
}
