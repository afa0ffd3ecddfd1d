namespace Pyprobe.Cli.Tests;

/// <summary>
/// trace --priority: while pyprobe streams events, its reading thread and its output writer run at the raised
/// priority the option names (read back from /proc/PID/task/TID/stat), every other thread of pyprobe as started,
/// --priority normal changes nothing, and the default (auto) raises them only while the reader is behind.
/// </summary>
public class ConsumerPriorityTests
{
    private static readonly string Workload = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "known_counts.py");

    private const int SchedOther = 0, SchedFifo = 1;

    [Fact]
    public void HighRaisesTheReaderAndWriterToNiceMinusTen()
    {
        var threads = ThreadsWhileTracing(["--priority", "high"], out var stderr);
        Assert.Contains("pyprobe reads events at nice -10", stderr);
        var raised = threads.Where(t => t.Raised).ToList();
        Assert.Equal(2, raised.Count);
        Assert.All(raised, t => Assert.Equal((-10, SchedOther, 0), (t.Nice, t.Policy, t.RtPriority)));
        Assert.All(threads.Where(t => !t.Raised), t => Assert.Equal((0, SchedOther), (t.Nice, t.Policy)));
    }

    [Fact]
    public void RealtimeRunsTheReaderAndWriterUnderSchedFifo()
    {
        var threads = ThreadsWhileTracing(["--priority", "realtime"], out var stderr);
        Assert.Contains("SCHED_FIFO 1", stderr);
        Assert.All(threads.Where(t => t.Raised), t => Assert.Equal((SchedFifo, 1), (t.Policy, t.RtPriority)));
        Assert.All(threads.Where(t => !t.Raised), t => Assert.Equal((0, SchedOther), (t.Nice, t.Policy)));
    }

    [Fact]
    public void NormalLeavesEveryThreadAsStarted()
    {
        var threads = ThreadsWhileTracing(["--priority", "normal"], out var stderr);
        Assert.DoesNotContain("pyprobe reads events", stderr);
        Assert.Contains(threads, t => t.Raised);
        Assert.All(threads, t => Assert.Equal((0, SchedOther, 0), (t.Nice, t.Policy, t.RtPriority)));
    }

    [Theory]
    [InlineData("gc")]
    [InlineData("imports")]
    [InlineData("audit")]
    public void EventCommandsRaiseTheirReaderAndWriterToo(string command)
    {
        var threads = ThreadsWhile(command, ["--priority", "high"], out var stderr);
        Assert.Contains("pyprobe reads events at nice -10", stderr);
        var raised = threads.Where(t => t.Raised).ToList();
        Assert.Equal(2, raised.Count);
        Assert.All(raised, t => Assert.Equal((-10, SchedOther, 0), (t.Nice, t.Policy, t.RtPriority)));
        Assert.All(threads.Where(t => !t.Raised), t => Assert.Equal((0, SchedOther), (t.Nice, t.Policy)));
        var normal = ThreadsWhile(command, ["--priority", "normal"], out stderr);
        Assert.DoesNotContain("pyprobe reads events", stderr);
        Assert.All(normal, t => Assert.Equal((0, SchedOther, 0), (t.Nice, t.Policy, t.RtPriority)));
        var auto = ThreadsWhile(command, [], out stderr);
        Assert.DoesNotContain("pyprobe reads events", stderr);
        Assert.DoesNotContain("fell behind", stderr);
        Assert.All(auto, t => Assert.Equal((0, SchedOther, 0), (t.Nice, t.Policy, t.RtPriority)));
    }

    /// <summary>
    /// The default, auto: as started while the reader keeps up; stopped (SIGSTOP) for 1 s while a program calls
    /// without pause, pyprobe finds its 16 MiB ring full when it resumes and raises the reader and the writer to nice -10;
    /// once the program stops calling and the ring has stayed nearly empty for a second, both are back at nice 0;
    /// the end report says how often and how long they ran raised.
    /// </summary>
    [Fact]
    public void AutoRaisesOnlyWhileTheReaderIsBehind()
    {
        var python = CachedPythons.Get("3.9");
        const string Calls = """
            import sys, threading
            stop = threading.Event()
            def f():
                return 1
            def calls():
                while not stop.is_set():
                    for _ in range(10000):
                        f()
            print("ready", flush=True)
            sys.stdin.readline()
            worker = threading.Thread(target=calls)
            worker.start()
            sys.stdin.readline()
            stop.set()
            worker.join()
            print("stopped", flush=True)
            sys.stdin.readline()
            """;
        using var workload = WaitingWorkload.Start(python.Command("-c", Calls));
        using var output = new TempFile();
        using var trace = AttachedTracer.Start(["trace", "-p", workload.Pid.ToString(), "-o", output.Path], out _, out var notes);
        workload.Go();
        Thread.Sleep(300);
        var keepingUp = Threads(trace.Id);
        Assert.All(keepingUp, t => Assert.Equal((0, SchedOther), (t.Nice, t.Policy)));

        AttachedTracer.Signal(trace.Id, "STOP");
        Thread.Sleep(1000); // 4 MiB (a quarter of the ring) needs 4 MB/s; the 3.9 loop makes ~50 MB/s of records
        AttachedTracer.Signal(trace.Id, "CONT");
        // Raised while it drains the backlog (a quarter of the ring: ~100 ms at its speed), lowered once caught up: looked
        // at every 10 ms from the moment it goes on (one look after 200 ms missed the raise once in CI).
        List<ThreadState> behind;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        do
        {
            behind = Threads(trace.Id);
            if (behind.Count(t => t.Raised) == 2 && behind.All(t => (t.Nice, t.Policy) == (t.Raised ? (-10, SchedOther) : (0, SchedOther)))) break;
            Thread.Sleep(10);
        }
        while (DateTime.UtcNow < until);
        Assert.Equal(2, behind.Count(t => t.Raised));
        Assert.All(behind, t => Assert.Equal(t.Raised ? (-10, SchedOther) : (0, SchedOther), (t.Nice, t.Policy)));

        workload.Go();
        Assert.Equal("stopped", workload.ReadLine());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        List<ThreadState> after;
        while ((after = Threads(trace.Id)).Any(t => t.Nice != 0) && DateTime.UtcNow < deadline) Thread.Sleep(100);
        Assert.All(after, t => Assert.Equal((0, SchedOther), (t.Nice, t.Policy)));

        AttachedTracer.Signal(trace.Id, "INT");
        var (exit, _, rest) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, rest);
        Assert.DoesNotContain("pyprobe reads events", notes);
        Assert.Matches(@"pyprobe: note: pyprobe's event reader fell behind 1 time \(a quarter of the ring unread\) and read at nice -10 for [1-9]\.\d\d s in all", rest);
    }

    [Fact]
    public void BadValueGivesOneLineAndUsageExit()
    {
        var result = PyprobeBinary.Run(["trace", "--priority", "fast", "-p", "1"]);
        Assert.True(result.ExitCode == 2, result.ToString());
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("--priority"));
        Assert.Contains("invalid --priority 'fast': expected auto, high, realtime or normal", line);
    }

    /// <summary>One thread of pyprobe: Raised for the event reader (the main thread) and the output writer.</summary>
    private sealed record ThreadState(int Tid, string Name, int Nice, int Policy, int RtPriority, bool Raised);

    private static List<ThreadState> ThreadsWhileTracing(string[] options, out string stderr) => ThreadsWhile("trace", options, out stderr);

    /// <summary>Runs <paramref name="command"/> on a parked 3.9 workload with -o FILE and <paramref name="options"/>, reads every pyprobe thread once it has attached, then stops it.</summary>
    private static List<ThreadState> ThreadsWhile(string command, string[] options, out string stderr)
    {
        var python = CachedPythons.Get("3.9");
        using var workload = WaitingWorkload.Start(python.Command(Workload, "wait"));
        using var output = new TempFile();
        using var trace = AttachedTracer.Start([command, "-p", workload.Pid.ToString(), "-o", output.Path, .. options], out _, out var notes);
        var threads = Threads(trace.Id);
        AttachedTracer.Signal(trace.Id, "INT");
        var (exit, _, rest) = AttachedTracer.Finish(trace, TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, rest);
        stderr = notes + rest;
        Assert.Contains(threads, t => t.Name == "pyprobe output");
        return threads;
    }

    /// <summary>pyprobe's threads now; one that ends between the listing and its read (a start-up helper) is left out.</summary>
    private static List<ThreadState> Threads(int pid) => Directory.GetDirectories($"/proc/{pid}/task").Select(dir => Read(pid, int.Parse(Path.GetFileName(dir)))).OfType<ThreadState>().ToList();

    /// <summary>/proc/PID/task/TID/stat: nice is field 19, rt_priority 40, policy 41 (proc(5)); the name may hold spaces. Null when the thread is gone.</summary>
    private static ThreadState? Read(int pid, int tid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/task/{tid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        var open = stat.IndexOf('(');
        var close = stat.LastIndexOf(')');
        var name = stat[(open + 1)..close];
        var fields = stat[(close + 2)..].Split(' '); // fields[0] is field 3 (state)
        int Field(int n) => int.Parse(fields[n - 3]);
        return new ThreadState(tid, name, Field(19), Field(41), Field(40), Raised: tid == pid || name == "pyprobe output");
    }
}
