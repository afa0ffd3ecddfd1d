using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// C++ frames read as C++: a library built with g++ for the test (Workloads/cxx_kernel.cpp), called through ctypes, shows
/// in <c>record --native</c> and <c>dump --native</c> as <c>pyprobe_demo::Matrix&lt;double&gt;::multiply</c>, not as
/// <c>_ZNK12pyprobe_demo6MatrixIdE8multiplyEl</c>: the name c++filt -p gives, in the place its caller puts it.
/// </summary>
public sealed class CxxFrameTests : IDisposable
{
    private const string Kernel = "pyprobe_demo::(anonymous namespace)::spin_kernel<4>";
    private const string Member = "pyprobe_demo::Matrix<double>::multiply";
    private const string Entry = "run_kernel";

    private static readonly string Workloads = Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads");
    private readonly string _library = Path.Combine(Path.GetTempPath(), $"pyprobe-cxx-{Guid.NewGuid():N}.so");

    public CxxFrameTests()
    {
        using var gxx = Process.Start(new ProcessStartInfo("g++", ["-O1", "-shared", "-fPIC", "-o", _library, Path.Combine(Workloads, "cxx_kernel.cpp")])
        {
            RedirectStandardError = true,
        })!;
        var errors = gxx.StandardError.ReadToEnd();
        gxx.WaitForExit();
        Assert.True(gxx.ExitCode == 0, $"g++ failed: {errors}");
    }

    public void Dispose() => File.Delete(_library);

    private string Frame(string function) => $"{function} ({Path.GetFileName(_library)})";

    /// <summary>The line of work() that calls into the library: the Python frame right above the C++ ones.</summary>
    private static int CallLine() =>
        Array.FindIndex(File.ReadAllLines(Path.Combine(Workloads, "cxx_calls.py")), l => l.Contains("lib.run_kernel(200)", StringComparison.Ordinal)) + 1;

    private Process Start(string interpreter)
    {
        var start = new ProcessStartInfo(CachedPythons.Executable(interpreter)) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(Workloads, "cxx_calls.py"));
        start.ArgumentList.Add(_library);
        var process = Process.Start(start)!;
        var line = process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(30)) || line.Result != "ready")
        {
            process.Kill();
            Assert.Fail($"the workload did not start on {interpreter}");
        }
        return process;
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void RecordNative_NamesTheCxxFramesAsCxxfiltDoes(string interpreter)
    {
        var output = Path.Combine(Path.GetTempPath(), $"pyprobe-cxx-{Guid.NewGuid():N}.folded");
        using var workload = Start(interpreter);
        try
        {
            var result = PyprobeBinary.Run(["record", "--native", "-r", "199", "-f", "collapsed", "-o", output, "-p", workload.Id.ToString(), "--duration", "3"],
                timeout: TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.ToString());
            var stacks = File.ReadAllLines(output).Where(l => l.Length > 0).Select(line =>
            {
                var space = line.LastIndexOf(' ');
                return (Frames: line[..space].Split(';'), Count: long.Parse(line[(space + 1)..]));
            }).ToList();
            var total = stacks.Sum(s => s.Count);
            // ~597 on an idle machine; CI runs other test classes beside this one on the two CPUs.
            Assert.True(total >= 150, $"{total} samples: {result}");

            var library = $"({Path.GetFileName(_library)})";
            var work = new Regex($@"^work \(.*cxx_calls\.py:{CallLine()}\)$");
            foreach (var (frames, _) in stacks)
            {
                var text = string.Join(";", frames);
                Assert.DoesNotContain(frames, f => f.StartsWith("_Z", StringComparison.Ordinal));
                var ours = frames.Where(f => f.EndsWith(library, StringComparison.Ordinal)).ToArray();
                if (ours.Length == 0) continue;
                // The library's frames are the call chain, outermost first, under work()'s call line.
                Assert.True(ours.SequenceEqual(new[] { Frame(Entry), Frame(Member), Frame(Kernel) }.Take(ours.Length)) && ours.Length >= 2, text);
                var entry = Array.IndexOf(frames, Frame(Entry));
                Assert.Matches(work, frames.Take(entry).Last(f => Regex.IsMatch(f, @":\d+\)$")));
            }
            var inKernel = stacks.Where(s => s.Frames[^1] == Frame(Kernel)).Sum(s => s.Count);
            Assert.True(inKernel >= total * 8 / 10, $"{inKernel} of {total} samples in {Kernel}: {result}");
        }
        finally
        {
            workload.Kill();
            File.Delete(output);
        }
    }

    /// <summary>The main thread's frames in <c>dump --native</c>, taken again (5 times at most) until the innermost is <paramref name="innermost"/>.</summary>
    private static string[] DumpUntil(string pid, Func<string, bool> innermost)
    {
        // The thread spends all but a few microseconds of each 200 ms call in spin_kernel; a dump taken in that gap
        // (in now() or the interpreter) is taken again.
        string[] frames = [];
        for (var attempt = 0; attempt < 5 && (frames.Length == 0 || !innermost(frames[0])); attempt++)
        {
            var dump = PyprobeBinary.Run(["dump", "--native", "-p", pid], timeout: TimeSpan.FromSeconds(30));
            Assert.True(dump.ExitCode == 0, dump.ToString());
            frames = dump.Stdout.Split('\n').SkipWhile(l => !l.StartsWith($"Thread {pid} ", StringComparison.Ordinal)).Skip(1)
                .TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal)).ToArray();
        }
        return frames;
    }

    /// <summary>Strips the library as a distribution does; with <paramref name="miniDebugInfo"/>, keeps its static functions' symbols in <c>.gnu_debugdata</c> (Fedora's recipe).</summary>
    private void Strip(bool miniDebugInfo)
    {
        var script = miniDebugInfo
            ? $$"""
                cp {{_library}} {{_library}}.full && strip --strip-all {{_library}}
                nm -D {{_library}}.full --format=posix --defined-only | awk '{print $1}' | sort > {{_library}}.dynsyms
                nm {{_library}}.full --format=posix --defined-only | awk '$2 == "T" || $2 == "t" || $2 == "W" {print $1}' | sort > {{_library}}.funcsyms
                comm -13 {{_library}}.dynsyms {{_library}}.funcsyms > {{_library}}.keep
                objcopy --only-keep-debug {{_library}}.full {{_library}}.debug
                objcopy -S --remove-section .gdb_index --remove-section .comment --keep-symbols={{_library}}.keep {{_library}}.debug {{_library}}.data
                xz -f {{_library}}.data
                objcopy --add-section .gnu_debugdata={{_library}}.data.xz {{_library}}
                rm -f {{_library}}.full {{_library}}.dynsyms {{_library}}.funcsyms {{_library}}.keep {{_library}}.debug {{_library}}.data.xz
                """
            : $"strip --strip-all {_library}";
        using var bash = Process.Start(new ProcessStartInfo("/bin/bash", ["-euo", "pipefail", "-c", script]) { RedirectStandardError = true })!;
        var errors = bash.StandardError.ReadToEnd();
        bash.WaitForExit();
        Assert.True(bash.ExitCode == 0, errors);
    }

    /// <summary>
    /// A stripped library names its static function (spin_kernel, in an anonymous namespace) from its MiniDebugInfo;
    /// stripped without one, the same frame is only FILE+0xOFFSET.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DumpNative_StrippedLibrary_NamesItsStaticFunctionFromMiniDebugInfo(bool miniDebugInfo)
    {
        Strip(miniDebugInfo);
        using var workload = Start("pyenv:3.12.1");
        try
        {
            var file = Path.GetFileName(_library);
            var anonymous = new Regex($@"^    {Regex.Escape(file)}\+0x[0-9a-f]+ \({Regex.Escape(file)}\)$");
            var frames = DumpUntil(workload.Id.ToString(), f => f == "    " + Frame(Kernel) || anonymous.IsMatch(f));
            if (miniDebugInfo) Assert.Equal("    " + Frame(Kernel), frames[0]);
            else Assert.Matches(anonymous, frames[0]);
            Assert.Equal(["    " + Frame(Member), "    " + Frame(Entry)], frames.Skip(1).Take(2));
        }
        finally
        {
            workload.Kill();
        }
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    public void DumpNative_NamesTheCxxFramesAsCxxfiltDoes(string interpreter)
    {
        using var workload = Start(interpreter);
        try
        {
            var pid = workload.Id.ToString();
            var frames = DumpUntil(pid, f => f == "    " + Frame(Kernel));
            Assert.Equal(["    " + Frame(Kernel), "    " + Frame(Member), "    " + Frame(Entry)], frames.Take(3));
            Assert.Matches($@"^    work \(.*cxx_calls\.py:{CallLine()}\)$", frames.First(f => Regex.IsMatch(f, @":\d+\)$")));

            using var json = JsonDocument.Parse(PyprobeBinary.Run(["dump", "--native", "-f", "json", "-p", pid], timeout: TimeSpan.FromSeconds(30)).Stdout);
            var main = json.RootElement.GetProperty("threads").EnumerateArray().Single(t => t.GetProperty("tid").GetInt32() == workload.Id);
            var names = main.GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("funcname").GetString()).ToList();
            Assert.Contains(Member, names);
            Assert.DoesNotContain(names, n => n!.StartsWith("_Z", StringComparison.Ordinal));
        }
        finally
        {
            workload.Kill();
        }
    }
}
