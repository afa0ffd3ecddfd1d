using Pyprobe.Faults.Tests.Support;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// A Python in its own mount and pid namespace, chrooted into a directory that holds a fetched
/// Debian interpreter (bind mounts, visible only inside): pyprobe, given the host pid, finds the
/// probes through /proc/PID/root, and events carry the host pid, not the pid the process sees.
/// </summary>
public class NamespaceTests
{
    private const string Setup = "import os, gc\ngc.disable()\nprint(os.getpid(), flush=True)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n";

    [Fact]
    public void ChrootedPythonInItsOwnPidNamespaceIsTracedWithHostPids()
    {
        Requirements.EnsureRoot();
        Requirements.EnsureProgram("unshare", "util-linux");
        Requirements.EnsureProgram("chroot", "coreutils");
        var python = CachedPythons.Get("3.9");
        var root = Directory.CreateTempSubdirectory("pyprobe-chroot-").FullName;
        try
        {
            foreach (var dir in new[] { "usr", "lib/x86_64-linux-gnu", "lib64" }) Directory.CreateDirectory(Path.Combine(root, dir));
            // Inside the new mount namespace only: the fetched root's /usr, the host's libc and loader.
            var inside = string.Join(" && ",
                "mount --bind -o ro \"$2/usr\" \"$1/usr\"",
                "mount --bind -o ro /usr/lib/x86_64-linux-gnu \"$1/lib/x86_64-linux-gnu\"",
                "mount --bind -o ro /usr/lib64 \"$1/lib64\"",
                "exec env -i LD_LIBRARY_PATH=/lib/x86_64-linux-gnu PYTHONDONTWRITEBYTECODE=1 /usr/sbin/chroot \"$1\" /usr/bin/python3.9 \"$3\" \"$4\"");
            List<string> command = ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", inside, "sh", root, python.Root];
            using var workload = new PythonWorkload(command, Setup, "fib(15)\nfor _ in range(3):\n    gc.collect(1)\n");
            var namespacePid = int.Parse(Assert.Single(workload.Preamble));
            var hostPid = int.Parse(File.ReadAllText($"/proc/{workload.Pid}/task/{workload.Pid}/children").Trim());
            Assert.NotEqual(hostPid, namespacePid);
            Assert.Equal(1, namespacePid); // python is the namespace's init
            Assert.EndsWith("/usr/bin/python3.9", new FileInfo($"/proc/{hostPid}/exe").LinkTarget);
            Assert.False(File.Exists("/usr/bin/python3.9"), "the host must not have /usr/bin/python3.9, or the test proves nothing");

            var list = PyprobeBinary.Run(["list", "-p", hostPid.ToString()]);
            Assert.True(list.ExitCode == 0, list.ToString());
            Assert.Contains("usdt:/usr/bin/python3.9:python:function__entry", list.StdoutLines);

            using var json = new TempFile();
            using var trace = TraceProcess.Start(["trace", "function__entry", "gc__start", "--format", "json", "-o", json.Path, "-p", hostPid.ToString()]);
            Assert.Contains($"(pid {hostPid})", trace.AttachedLine);
            workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
            workload.Exit(TimeSpan.FromSeconds(10));
            var result = trace.Finish(TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains(", 0 lost", result.Stderr);

            var output = new TraceOutput(File.ReadAllText(json.Path));
            Assert.Equal(1973, output.Count("function__entry", "funcname", "fib"));
            Assert.Equal(3, output.OfProbe("gc__start").Count(e => e.GetProperty("generation").GetInt32() == 1));
            Assert.All(output.Events, e => Assert.Equal(hostPid, e.GetProperty("pid").GetInt32()));
            Assert.All(output.Events, e => Assert.Equal(hostPid, e.GetProperty("tid").GetInt32()));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
