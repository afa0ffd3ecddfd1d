using System.Diagnostics;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>
/// The whole sampling path on real interpreters: the runtime model's walk, the kernel program on CPU-clock
/// events, code objects named and lines found in user space.
/// </summary>
public class StackSamplingIntegrationTests
{
    private const string Script = """
        import sys
        def c():
            x = 0
            while True:
                x += 1
        def b():
            c()
        def a():
            b()
        a()
        """;

    public static TheoryData<string> Interpreters => new()
    {
        "pyenv:3.8.18", "pyenv:3.9.18", "pyenv:3.10.13", "pyenv:3.11.7", "pyenv:3.12.1", "pyenv:3.13.0",
        "debian:3.9", "debian:3.11", "debian:3.13", "debian:3.14", "debian:3.15",
    };

    internal static List<string> CommandFor(string interpreter)
    {
        var (kind, version) = (interpreter.Split(':')[0], interpreter.Split(':')[1]);
        if (kind == "pyenv")
        {
            var minor = string.Join('.', version.Split('.').Take(2));
            var path = $"/root/.pyenv/versions/{version}/bin/python{minor}";
            Requirements.EnsureFile(path);
            return [path];
        }
        return CachedPythons.Get(version).DirectCommand();
    }

    [Theory]
    [MemberData(nameof(Interpreters))]
    public void TheBusyStackIsSampledWithNamesAndLines(string interpreter)
    {
        Requirements.EnsureRoot();
        var scriptPath = Path.Combine(Path.GetTempPath(), $"pyprobe-sample-{Guid.NewGuid():N}.py");
        File.WriteAllText(scriptPath, Script + "\n");
        var command = CommandFor(interpreter);
        var start = new ProcessStartInfo(command[0]);
        foreach (var arg in command.Skip(1)) start.ArgumentList.Add(arg);
        start.ArgumentList.Add(scriptPath);
        using var python = Process.Start(start)!;
        try
        {
            Thread.Sleep(400);
            using var resolver = new CodeObjectResolver();
            var process = CPythonProcess.Attach(python.Id);
            var config = StackWalkConfigs.For(process);
            resolver.Add(process);
            var recorder = new ProfileRecorder(resolver, threadRoots: false, threadNames: (_, _) => null);
            using (var sampler = StackSampler.Start(new StackSamplerOptions(Frequency: 199, MaxDepth: 64)))
            {
                sampler.AddProcess(python.Id, config);
                var until = DateTime.UtcNow.AddSeconds(1.5);
                while (DateTime.UtcNow < until)
                {
                    sampler.Reader.WaitForData(50);
                    sampler.Reader.Drain(record => recorder.Add(record));
                }
                sampler.Reader.Drain(record => recorder.Add(record));
                Assert.Equal(0UL, sampler.Lost);
            }
            var profile = recorder.Build([python.Id], process.Binary.Version.ToString(), 199, ProfileMode.Cpu, DateTimeOffset.Now, TimeSpan.FromSeconds(1.5), 0);
            Assert.True(profile.TotalSamples >= 20, $"only {profile.TotalSamples} samples");
            var top = profile.Stacks.MaxBy(s => s.Count)!;
            var frames = profile.FramesOf(top).ToList();
            Assert.Equal(["<module>", "a", "b", "c"], frames.Select(f => f.Function));
            Assert.All(frames, f => Assert.Equal(scriptPath, f.File));
            Assert.Equal([10, 9, 7], frames.Take(3).Select(f => f.Line));
            Assert.Contains(frames[3].Line, new[] { 4, 5 });
            Assert.Equal([1, 8, 6, 2], frames.Select(f => f.FirstLine));
            // Every sample of the busy thread is that stack, up to the line inside c.
            Assert.All(profile.Stacks, s => Assert.Equal(["<module>", "a", "b", "c"], profile.FramesOf(s).Select(f => f.Function)));
        }
        finally
        {
            python.Kill();
            python.WaitForExit();
            File.Delete(scriptPath);
        }
    }
}
