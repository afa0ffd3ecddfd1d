using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The kernel's verifier walks every path of a program before it loads, about a microsecond per instruction it
/// processes here, and that time is most of what launch takes beyond the kernel's own wait (a `calls` program whose
/// string copies branched per outcome took 35,040 instructions and 40 ms where 3,884 do). Every program pyprobe loads
/// for trace, flow and calls, on each source of function events, must verify within a fixed budget of processed
/// instructions (the kernel's own count, verified_insns: deterministic, not a timing).
/// </summary>
public partial class VerifierBudgetTests(ITestOutputHelper output)
{
    /// <summary>
    /// About 2.5 times the largest program today (calls' return programs, ~3,900; the eval-frame entry with its memo
    /// processed 9,231 until its hashing loop ran under bpf_loop, 1,891 since).
    /// </summary>
    private const int Budget = 10000;

    [Theory]
    [InlineData("debian:3.9", "trace")]
    [InlineData("debian:3.9", "calls")]
    [InlineData("debian:3.11", "flow")]
    [InlineData("debian:3.11", "calls")]
    [InlineData("pyenv:3.9.18", "trace")]
    [InlineData("pyenv:3.9.18", "calls")]
    [InlineData("pyenv:3.12.1", "trace")]
    [InlineData("pyenv:3.12.1", "calls")]
    [InlineData("debian:3.13", "flow")]
    [InlineData("debian:3.13", "calls")]
    [InlineData("debian:3.14", "trace")]
    [InlineData("debian:3.14", "calls")]
    [InlineData("debian:3.15", "trace")]
    [InlineData("debian:3.15", "calls")]
    [InlineData("pyenv:3.12.1", "record")]
    [InlineData("debian:3.9", "record")]
    public void EveryProgramVerifiesWithinTheBudget(string interpreter, string command)
    {
        using var target = ReuseWorkload.Start(interpreter, wide: false);
        string[] args = command switch
        {
            "trace" => ["trace", "function__entry", "function__return", "-o", "/dev/null", "-p", target.Pid.ToString(CultureInfo.InvariantCulture)],
            // The sampler's walk and thread search (41,607 instructions while the verifier unrolled them).
            "record" => ["record", "--format", "collapsed", "-o", "/dev/null", "-p", target.Pid.ToString(CultureInfo.InvariantCulture)],
            _ => [command, "-o", "/dev/null", "-p", target.Pid.ToString(CultureInfo.InvariantCulture)],
        };
        using var tracer = AttachedTracer.Start(args, out _);
        var counts = VerifiedInstructions(tracer.Id);
        output.WriteLine($"{interpreter} {command}: {string.Join(", ", counts.Select(c => $"{c.Name} {c.Count}"))}");
        AttachedTracer.Signal(tracer.Id, "INT");
        var (exit, _, stderr) = AttachedTracer.Finish(tracer, TimeSpan.FromSeconds(30));
        Assert.True(exit == 0, stderr);
        Assert.Contains(counts, c => c.Count > 150); // the event programs were found, not only the warm-up, epoch and hook ones
        Assert.All(counts, c => Assert.True(c.Count <= Budget, $"{c.Name}: {c.Count} instructions processed, budget {Budget}"));
    }

    /// <summary>The programs behind the BPF links <paramref name="pid"/> holds: name and verified_insns.</summary>
    private static List<(string Name, int Count)> VerifiedInstructions(int pid)
    {
        var ids = new SortedSet<uint>();
        foreach (var fdinfo in Directory.GetFiles($"/proc/{pid}/fdinfo"))
        {
            string text;
            try { text = File.ReadAllText(fdinfo); } catch (IOException) { continue; }
            if (ProgId().Match(text) is { Success: true } m) ids.Add(uint.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        var result = new List<(string, int)>();
        foreach (var id in ids)
        {
            var fd = ProgramFd(id);
            if (fd < 0) continue;
            try
            {
                var info = File.ReadAllText($"/proc/self/fdinfo/{fd}");
                var count = int.Parse(VerifiedInsns().Match(info).Groups[1].Value, CultureInfo.InvariantCulture);
                result.Add(($"prog {id} ({ProgType().Match(info).Groups[1].Value})", count));
            }
            finally
            {
                Close(fd);
            }
        }
        Assert.NotEmpty(result);
        return result;
    }

    /// <summary>bpf(BPF_PROG_GET_FD_BY_ID): attr.prog_id, then next_id and open_flags (0).</summary>
    private static unsafe int ProgramFd(uint id)
    {
        var attr = stackalloc uint[4];
        attr[0] = id;
        return (int)Syscall(321, 13, (nint)attr, 16);
    }

    [DllImport("libc", EntryPoint = "syscall")] private static extern long Syscall(long number, long command, nint attr, long size);
    [DllImport("libc", EntryPoint = "close")] private static extern int Close(int fd);

    [GeneratedRegex(@"prog_id:\s*(\d+)")] private static partial Regex ProgId();
    [GeneratedRegex(@"verified_insns:\s*(\d+)")] private static partial Regex VerifiedInsns();
    [GeneratedRegex(@"prog_type:\s*(\d+)")] private static partial Regex ProgType();
}
