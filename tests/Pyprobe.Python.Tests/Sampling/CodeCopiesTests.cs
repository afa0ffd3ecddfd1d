using System.Diagnostics;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>
/// The kernel copies a code object the first time the walk meets it in a process, not at every sample: forked workers
/// that run the same code objects at the same addresses each get theirs once (a table indexed by address alone had them
/// take each other's entries: ten copies a sample for a pool of four).
/// </summary>
public class CodeCopiesTests
{
    // Three forked children and the parent run the same functions, each busy for 3 s.
    private const string Script = """
        import os, sys, time
        def spin(end):
            x = 0
            while time.time() < end:
                x += 1
        def work():
            spin(time.time() + 3)
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                work()
                os._exit(0)
            children.append(pid)
        print(" ".join(str(p) for p in children), flush=True)
        work()
        for pid in children:
            os.waitpid(pid, 0)
        """;

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.9")]
    public void ForkedWorkersOfOneCodeAreCopiedOnceEach(string interpreter)
    {
        Requirements.EnsureRoot();
        var scriptPath = Path.Combine(Path.GetTempPath(), $"pyprobe-copies-{Guid.NewGuid():N}.py");
        File.WriteAllText(scriptPath, Script + "\n");
        var command = StackSamplingIntegrationTests.CommandFor(interpreter);
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true };
        foreach (var arg in command.Skip(1)) start.ArgumentList.Add(arg);
        start.ArgumentList.Add(scriptPath);
        using var python = Process.Start(start)!;
        try
        {
            var pids = new[] { python.Id }.Concat(python.StandardOutput.ReadLine()!.Split(' ').Select(int.Parse)).ToList();
            using var resolver = new CodeObjectResolver();
            long samples = 0, copies = 0;
            var recorder = new ProfileRecorder(resolver, threadRoots: false, threadNames: (_, _) => null);
            using (var sampler = StackSampler.Start(new StackSamplerOptions(Frequency: 499, MaxDepth: 64)))
            {
                foreach (var pid in pids)
                {
                    var process = CPythonProcess.Attach(pid);
                    sampler.AddProcess(pid, StackWalkConfigs.For(process));
                    resolver.Add(process);
                }
                void Take(ReadOnlySpan<byte> record)
                {
                    if ((new StackSampleRecord(record).Flags & StackSampleFlags.CodeObject) != 0) copies++;
                    else samples++;
                    recorder.Add(record);
                }
                var until = DateTime.UtcNow.AddSeconds(2);
                while (DateTime.UtcNow < until)
                {
                    sampler.Reader.WaitForData(50);
                    sampler.Reader.Drain(Take);
                }
                sampler.Reader.Drain(Take);
                Assert.Equal(0UL, sampler.Lost);
            }
            Assert.True(samples >= 500, $"only {samples} samples");
            // Each of the 4 processes has a handful of code objects on its stacks (<module>, work, spin and whatever the
            // start ran); every sample holds 3 of them.
            Assert.True(copies <= 4 * 12, $"{copies} copies for {samples} samples of 4 processes");
            var profile = recorder.Build(pids, "", 499, ProfileMode.Cpu, DateTimeOffset.Now, TimeSpan.FromSeconds(2), 0);
            Assert.DoesNotContain(profile.Frames, f => f.Kind == FrameKind.Unknown);
        }
        finally
        {
            python.Kill(entireProcessTree: true);
            python.WaitForExit();
            File.Delete(scriptPath);
        }
    }
}
