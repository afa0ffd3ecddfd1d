using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// Workloads/c_thread.py with its library: a Python process with a thread Python does not know (pthread_create on a C
/// function, spin_forever, that spins). The library is built with gcc for the test and deleted on dispose.
/// </summary>
public sealed class CThreadWorkload : IDisposable
{
    private const string Source = "#include <unistd.h>\n#include <sys/syscall.h>\nvolatile int spin_tid;\n" +
        "void *spin_forever(void *arg) { volatile unsigned long n = 0; spin_tid = (int)syscall(SYS_gettid); for (;;) n++; return arg; }\n";

    private readonly string _source, _library;

    public Process Process { get; }

    /// <summary>The C thread's id.</summary>
    public int CThreadTid { get; }

    /// <summary>The library's file name: its frames are named "spin_forever (FILE)".</summary>
    public string LibraryName => Path.GetFileName(_library);

    public CThreadWorkload(string python)
    {
        var stem = Path.Combine(Path.GetTempPath(), $"pyprobe-cthread-{Guid.NewGuid():N}");
        (_source, _library) = (stem + ".c", stem + ".so");
        File.WriteAllText(_source, Source);
        using (var gcc = Process.Start("gcc", ["-O1", "-shared", "-fPIC", "-o", _library, _source])!)
        {
            gcc.WaitForExit();
            Assert.Equal(0, gcc.ExitCode);
        }
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(PyprobeBinary.RepoRoot, "tests", "Pyprobe.Cli.Tests", "Workloads", "c_thread.py"));
        start.ArgumentList.Add(_library);
        Process = Process.Start(start)!;
        var line = Process.StandardOutput.ReadLineAsync();
        var ready = line.Wait(TimeSpan.FromSeconds(30)) ? line.Result?.Split(' ') : null;
        if (ready is not ["ready", var tid])
        {
            Dispose();
            Assert.Fail($"the workload said '{string.Join(' ', ready ?? [])}'");
            return;
        }
        CThreadTid = int.Parse(tid);
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited) Process.Kill();
            Process.WaitForExit();
        }
        catch (InvalidOperationException) { }
        Process?.Dispose();
        File.Delete(_source);
        File.Delete(_library);
    }
}
