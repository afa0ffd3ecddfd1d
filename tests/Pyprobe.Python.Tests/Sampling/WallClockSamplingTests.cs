using System.Diagnostics;
using Xunit.Abstractions;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>
/// Wall-clock recordings (<c>--idle</c>) on real interpreters: threads that sleep, wait on a lock or in a socket
/// recv are absent from CPU profiles and present in wall-clock ones with the share of wall time they spent there.
/// </summary>
public class WallClockSamplingTests(ITestOutputHelper output)
{
    private const int Rate = 99;

    // The main thread sleeps in sleeper() in short naps (each nap a switch-out the kernel walks); a second
    // thread burns CPU in burn(). Wall clock: half each.
    // tests/Workloads/busy_and_sleeping.py, shared with the CLI's record tests.
    private static readonly string BusyAndSleeping = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Workloads", "busy_and_sleeping.py"));

    // Four threads, a quarter each: burn() on the CPU, waiter() blocked on a held lock (timing out and retrying),
    // receiver() in a socket recv that times out, dozer() in one sleep longer than the recording (asleep before
    // recording starts: its stack is read from user space when the process is found).
    private const string Blocked = """
        import socket, threading, time
        def burn():
            x = 0
            while True:
                x += 1
        held = threading.Lock()
        held.acquire()
        def waiter():
            while True:
                held.acquire(timeout=0.2)
        a, b = socket.socketpair()
        b.settimeout(0.2)
        def receiver():
            while True:
                try:
                    b.recv(16)
                except socket.timeout:
                    pass
        def dozer():
            time.sleep(1000)
        for f in (waiter, receiver, dozer):
            threading.Thread(target=f, daemon=True).start()
        burn()
        """;

    // hasher() spends its time in sha256 of 32 MiB, which runs with the GIL released, while the main thread
    // runs Python code in burn(): both run at once, so both get about half of the samples.
    private const string GilReleased = """
        import hashlib, threading
        data = b"x" * (32 << 20)
        def hasher():
            while True:
                hashlib.sha256(data).digest()
        def burn():
            x = 0
            while True:
                x += 1
        threading.Thread(target=hasher, daemon=True).start()
        burn()
        """;

    public static TheoryData<string> Interpreters => StackSamplingIntegrationTests.Interpreters;

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void ASleepingThreadIsAbsentFromCpuProfilesAndHasItsShareOfWallClock(string interpreter)
    {
        using var python = Start(interpreter, BusyAndSleeping);
        var cpu = Record(python.Process.Id, wallClock: false, seconds: 1.5);
        Assert.True(cpu.TotalSamples >= 20, $"only {cpu.TotalSamples} CPU samples");
        Assert.True(Share(cpu, "burn") >= 0.97, $"burn has {Share(cpu, "burn"):P0} of the CPU samples");
        // sleeper runs a few microseconds per nap: a CPU sample may land on it now and then, never more.
        var sleeperOnCpu = Share(cpu, "sleeper") * cpu.TotalSamples;
        Assert.True(sleeperOnCpu <= Math.Max(3, 0.02 * cpu.TotalSamples), $"sleeper has {sleeperOnCpu} of {cpu.TotalSamples} CPU samples");

        var wall = Record(python.Process.Id, wallClock: true, seconds: 3);
        // Two threads for 3 s at 99 Hz: about 594 samples, half each.
        var expected = 2 * 3 * Rate;
        output.WriteLine($"{interpreter}: {wall.TotalSamples} wall samples ({wall.Metadata.Totals.OffCpu} off-CPU), burn {Share(wall, "burn"):P1}, sleeper {Share(wall, "sleeper"):P1}; CPU mode: {cpu.TotalSamples}, sleeper {Share(cpu, "sleeper"):P1}");
        Assert.InRange(wall.TotalSamples, expected * 85 / 100, expected * 115 / 100);
        Assert.InRange(Share(wall, "burn"), 0.40, 0.60);
        Assert.InRange(Share(wall, "sleeper"), 0.40, 0.60);
        Assert.True(wall.Metadata.Totals.OffCpu >= expected * 35 / 100, $"only {wall.Metadata.Totals.OffCpu} off-CPU samples");
        var sleeping = wall.Stacks.Where(s => Innermost(wall, s) == "sleeper").MaxBy(s => s.Count)!;
        Assert.Equal(["<module>", "sleeper"], wall.FramesOf(sleeping).Select(f => f.Function));
        Assert.Equal(8, wall.FramesOf(sleeping).Last().Line);
    }

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void ThreadsBlockedOnALockInRecvAndInALongSleepShowTheirFunctions(string interpreter)
    {
        using var python = Start(interpreter, Blocked);
        var cpu = Record(python.Process.Id, wallClock: false, seconds: 1.5);
        Assert.True(Share(cpu, "burn") >= 0.97, $"burn has {Share(cpu, "burn"):P0} of the CPU samples");

        var wall = Record(python.Process.Id, wallClock: true, seconds: 3);
        var expected = 4 * 3 * Rate;
        output.WriteLine($"{interpreter}: {wall.TotalSamples} wall samples ({wall.Metadata.Totals.OffCpu} off-CPU): " +
            string.Join(", ", new[] { "burn", "waiter", "receiver", "dozer" }.Select(f => $"{f} {Share(wall, f):P1}")));
        Assert.InRange(wall.TotalSamples, expected * 85 / 100, expected * 115 / 100);
        foreach (var function in new[] { "burn", "waiter", "receiver", "dozer" })
            Assert.True(Share(wall, function) is >= 0.15 and <= 0.35, $"{function} has {Share(wall, function):P1} of {wall.TotalSamples} wall-clock samples");
        var lines = wall.Stacks.GroupBy(s => Innermost(wall, s)).ToDictionary(g => g.Key, g => wall.FramesOf(g.MaxBy(s => s.Count)!).Last().Line);
        Assert.Equal(10, lines["waiter"]);
        Assert.Equal(16, lines["receiver"]);
        Assert.Equal(20, lines["dozer"]);
    }

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void AThreadInCCodeThatReleasedTheGilIsSampledWithItsPythonStack(string interpreter)
    {
        using var python = Start(interpreter, GilReleased);
        var cpu = Record(python.Process.Id, wallClock: false, seconds: 2);
        output.WriteLine($"{interpreter}: {cpu.TotalSamples} CPU samples, hasher {Share(cpu, "hasher"):P1}, burn {Share(cpu, "burn"):P1}");
        // Were hasher's samples only those where it holds the GIL, burn could not run alongside and hasher
        // would have nearly all of them (a hash takes tens of ms, the switch interval is 5 ms).
        Assert.InRange(Share(cpu, "hasher"), 0.2, 0.8);
        Assert.InRange(Share(cpu, "burn"), 0.2, 0.8);
        var hashing = cpu.Stacks.Where(s => Innermost(cpu, s) == "hasher").MaxBy(s => s.Count)!;
        Assert.Equal(5, cpu.FramesOf(hashing).Last().Line);
    }

    private static string Innermost(StackProfile profile, StackCount stack) => profile.FramesOf(stack).Last().Function;

    private static double Share(StackProfile profile, string function) =>
        profile.TotalSamples == 0 ? 0 : (double)profile.Stacks.Where(s => Innermost(profile, s) == function).Sum(s => s.Count) / profile.TotalSamples;

    private static StackProfile Record(int pid, bool wallClock, double seconds)
    {
        using var session = SamplingSession.Start(new SampleScope.Processes([pid]), new StackSamplerOptions(Rate, 64, OffCpu: wallClock), threadRoots: false);
        Assert.Equal([pid], session.Pids);
        var started = DateTimeOffset.Now;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            session.Wait(50);
            session.Drain();
        }
        session.Detach();
        session.Drain();
        return session.Build(started, clock.Elapsed, wallClock ? ProfileMode.Wall : ProfileMode.Cpu);
    }

    private sealed class RunningScript(Process process, string path) : IDisposable
    {
        public Process Process => process;

        public void Dispose()
        {
            process.Kill();
            process.WaitForExit();
            File.Delete(path);
        }
    }

    private static RunningScript Start(string interpreter, string script)
    {
        Requirements.EnsureRoot();
        var path = Path.Combine(Path.GetTempPath(), $"pyprobe-wall-{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script + "\n");
        var command = StackSamplingIntegrationTests.CommandFor(interpreter);
        var start = new ProcessStartInfo(command[0]);
        foreach (var arg in command.Skip(1)) start.ArgumentList.Add(arg);
        start.ArgumentList.Add(path);
        var process = Process.Start(start)!;
        Thread.Sleep(500);
        return new RunningScript(process, path);
    }
}
