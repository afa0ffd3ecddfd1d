using Pyprobe.Bpf.Launch;
using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Tests.Launch;

public class UnwaitedThreadTests
{
    [Fact]
    public void RunsTheWorkOnANewNamedThread()
    {
        using var done = new ManualResetEventSlim();
        int tid = 0;
        string? name = null;
        UnwaitedThread.Start(() =>
        {
            tid = ThreadScheduling.CurrentThreadId();
            name = File.ReadAllText($"/proc/self/task/{tid}/comm").TrimEnd('\n');
            done.Set();
        }, "pyprobe test");
        Assert.True(done.Wait(TimeSpan.FromSeconds(10)));
        Assert.NotEqual(ThreadScheduling.CurrentThreadId(), tid);
        Assert.Equal("pyprobe test", name);
    }

    /// <summary>An exception must not leave a native thread's start routine (that ends the process): the work after it runs on.</summary>
    [Fact]
    public void AFailureStaysOnItsThread()
    {
        using var after = new ManualResetEventSlim();
        UnwaitedThread.Start(() => throw new InvalidOperationException("fails on purpose"), "pyprobe fails");
        UnwaitedThread.Start(after.Set, "pyprobe after");
        Assert.True(after.Wait(TimeSpan.FromSeconds(10)));
    }
}
