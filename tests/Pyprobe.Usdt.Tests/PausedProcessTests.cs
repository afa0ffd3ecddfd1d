using System.Diagnostics;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// PausedProcess on a real CPython with two threads: held, every thread shows ptrace's 't' and the process pyprobe as its
/// tracer; the registers and the stack copy are the thread's; a signal sent while it is held is delivered once it is let
/// go (the Python handler runs); let go, nothing traces it and it goes on. A second tracer is refused with a clear message.
/// </summary>
public class PausedProcessTests(ITestOutputHelper output)
{
    private const string Script = """
        import signal, sys, threading, time
        signal.signal(signal.SIGUSR1, lambda *_: print("usr1", flush=True))
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
        print("ready", flush=True)
        while True:
            time.sleep(3600)
        """;

    [Fact]
    public void HoldsEveryThreadAndLetsGoWithNothingLost()
    {
        if (TestPythons.Get("3.11", output) is not { } python) return;
        using var process = RunningProcess.Start(python.LauncherPath, ["-c", Script], _ => true);
        Assert.Equal("ready", process.ReadLine(TimeSpan.FromSeconds(10)));
        var tasks = Directory.GetDirectories($"/proc/{process.Pid}/task").Select(d => int.Parse(Path.GetFileName(d))).Order().ToArray();
        Assert.Equal(2, tasks.Length);
        var self = Environment.ProcessId;

        using (var paused = PausedProcess.Pause(process.Pid))
        {
            Assert.Equal(tasks, paused.Threads.Order());
            foreach (var tid in tasks)
            {
                Assert.Equal('t', State(process.Pid, tid));
                Assert.Equal(self, TracerOf(tid));
                Assert.Equal('S', paused.StateBefore(tid)); // both were asleep in time.sleep
                var registers = paused.Registers(tid);
                var stack = paused.ReadStack(tid, registers.Sp);
                // The stack pointer is in the thread's stack, the instruction in libc's code (the sleep's system call).
                var maps = ProcMaps.Read(process.Pid);
                var stackMapping = maps.Single(m => registers.Sp >= m.Start && registers.Sp < m.End);
                Assert.Equal((int)(stackMapping.End - registers.Sp), stack.Length);
                Assert.EndsWith("libc.so.6", maps.Single(m => registers.Ip >= m.Start && registers.Ip < m.End && m.IsExecutable).Path);
            }
            // Sent while held: pending, not lost and not swallowed by the detach.
            Process.Start("kill", ["-USR1", process.Pid.ToString()])!.WaitForExit();
            Thread.Sleep(100);
            Assert.Equal('t', State(process.Pid, process.Pid));
            // A second tracer (here: a second PausedProcess) is refused, naming the one that holds it; the hold stays.
            var refused = Assert.Throws<UsdtException>(() => PausedProcess.Pause(process.Pid).Dispose());
            output.WriteLine(refused.Message);
            Assert.StartsWith($"Process {process.Pid} is already traced by process {self} (", refused.Message);
            Assert.All(tasks, tid => Assert.Equal(self, TracerOf(tid)));
        }

        Assert.Equal("usr1", process.ReadLine(TimeSpan.FromSeconds(10)));
        foreach (var tid in tasks)
        {
            Assert.Equal(0, TracerOf(tid));
            Assert.Equal('S', WaitForState(process.Pid, tid, 'S'));
        }
    }

    private static char State(int pid, int tid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/task/{tid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    private static char WaitForState(int pid, int tid, char wanted)
    {
        var clock = Stopwatch.StartNew();
        char state;
        while ((state = State(pid, tid)) != wanted && clock.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(5);
        return state;
    }

    /// <summary>The process (not the thread, which TracerPid names) that traces <paramref name="tid"/>, 0 for none.</summary>
    private static int TracerOf(int tid) => Status(tid, "TracerPid:") is var tracer and not 0 ? Status(tracer, "Tgid:") : 0;

    private static int Status(int tid, string field) =>
        int.Parse(File.ReadLines($"/proc/{tid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim());
}
