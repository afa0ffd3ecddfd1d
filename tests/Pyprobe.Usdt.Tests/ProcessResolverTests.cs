using Xunit.Abstractions;
using Pyprobe.Python.Processes;

namespace Pyprobe.Usdt.Tests;

/// <summary>/proc/PID resolution against real processes started by the test.</summary>
public class ProcessResolverTests(ITestOutputHelper output)
{
    [Fact]
    public void DebianPython311_ResolvesToTheStaticExecutable()
    {
        using var p = RunningProcess.Python("/usr/bin/python3.11");
        var t = PythonProcessResolver.Resolve(p.Pid);
        Assert.Equal(p.Pid, t.Pid);
        Assert.Equal(MappedPythonFileKind.MainExecutable, t.Kind);
        Assert.Equal("/usr/bin/python3.11", t.DisplayPath);
        Assert.Equal("/usr/bin/python3.11", t.HostPath);      // same mount namespace: plain path
        Assert.Equal($"/proc/{p.Pid}/root/usr/bin/python3.11", t.UsdtBinary.Path);
        Assert.Equal(8, t.UsdtBinary.Probes.Count);
        Assert.Equal(0x287f3UL, t.UsdtBinary.FindProbe("python", "gc__start")!.Sites[0].FileOffset);
    }

    [Fact]
    public void MappedLibPythonWithProbes_IsPreferredOverTheExecutable()
    {
        // An embedder-like process: python3.11 that also maps libpython3.11.so.1.0.
        using var p = RunningProcess.Start("/usr/bin/python3.11",
            ["-c", "import ctypes, time; ctypes.CDLL('libpython3.11.so.1.0'); time.sleep(30)"],
            maps => maps.Contains("libpython3.11.so.1.0", StringComparison.Ordinal));
        var t = PythonProcessResolver.Resolve(p.Pid);
        Assert.Equal(MappedPythonFileKind.LibPython, t.Kind);
        Assert.EndsWith("/libpython3.11.so.1.0", t.DisplayPath);
        Assert.Equal("/usr/bin/python3.11", t.Executable);
    }

    [Theory]
    [InlineData("3.13")]
    [InlineData("3.14")]
    [InlineData("3.15")]
    public void StartedThroughTheDynamicLoader_FindsThePythonBinaryInMaps(string version)
    {
        if (TestPythons.Get(version, output) is not { } py) return;
        Assert.True(py.NeedsOwnLoader);
        using var p = RunningProcess.Python(py.LoaderPath, "--library-path", py.LibraryPath, py.BinaryPath);
        var t = PythonProcessResolver.Resolve(p.Pid);
        Assert.Equal(MappedPythonFileKind.PythonNamedFile, t.Kind);
        Assert.Equal(py.BinaryPath, t.DisplayPath);
        Assert.EndsWith("ld-linux-x86-64.so.2", t.Executable);
        Assert.True(t.UsdtBinary.HasProvider("python"));
    }

    [Fact]
    public void ThroughTheLauncherScript_Works()
    {
        if (TestPythons.Get("3.15", output) is not { } py) return;
        using var p = RunningProcess.Python(py.LauncherPath);
        Assert.Equal(py.BinaryPath, PythonProcessResolver.Resolve(p.Pid).DisplayPath);
    }

    [Fact]
    public void OtherMountNamespace_HostPathGoesThroughProcRoot()
    {
        if (!File.Exists("/usr/bin/unshare"))
        {
            TestPythons.Missing("/usr/bin/unshare", output);
            return;
        }
        using var p = RunningProcess.Python("/usr/bin/unshare", "--mount", "/usr/bin/python3.11");
        var t = PythonProcessResolver.Resolve(p.Pid);
        Assert.Equal("/usr/bin/python3.11", t.DisplayPath);
        Assert.Equal($"/proc/{p.Pid}/root/usr/bin/python3.11", t.HostPath);
        Assert.True(File.Exists(t.HostPath));
    }

    [Fact]
    public void PyenvPython_IsReportedAsBuiltWithoutDtrace()
    {
        var pyenv = TestPythons.Pyenv().FirstOrDefault(x => x.Version.StartsWith("3.11.", StringComparison.Ordinal));
        if (pyenv.Binary is null)
        {
            TestPythons.Missing("pyenv 3.11", output);
            return;
        }
        using var p = RunningProcess.Python(pyenv.Binary);
        var e = Assert.Throws<PythonWithoutProbesException>(() => PythonProcessResolver.Resolve(p.Pid));
        Assert.Equal(p.Pid, e.Pid);
        Assert.Contains("/root/.pyenv/versions/" + pyenv.Version, e.BinaryPath);
        Assert.Contains("--with-dtrace", e.Message);
        output.WriteLine(e.Message);
    }

    [Fact]
    public void Sleep_IsNotAPythonProcess()
    {
        using var p = RunningProcess.Start("/usr/bin/sleep", ["30"], maps => maps.Contains("/sleep", StringComparison.Ordinal));
        var e = Assert.Throws<NotAPythonProcessException>(() => PythonProcessResolver.Resolve(p.Pid));
        Assert.Contains("sleep", e.Executable);
        Assert.Contains("not a Python interpreter", e.Message);
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(0)]
    [InlineData(-5)]
    public void NonexistentPid_IsProcessNotFound(int pid)
    {
        var e = Assert.Throws<ProcessNotFoundException>(() => PythonProcessResolver.Resolve(pid));
        Assert.Contains($"No process with PID {pid}", e.Message);
    }

    [Fact]
    public void ProcMaps_ParsesPathsWithSpacesDeletedAndAnonymous()
    {
        var maps = ProcMaps.Parse(
            "00400000-00421000 r--p 00000000 08:01 123   /usr/bin/python3.11\n" +
            "7f00-7f10 r-xp 00001000 08:01 5 /opt/my dir/libpython3.11.so.1.0 (deleted)\n" +
            "7ffd-7ffe rw-p 00000000 00:00 0                          [stack]\n" +
            "7ffe-7fff rw-p 00000000 00:00 0\n");
        Assert.Equal(4, maps.Count);
        Assert.Equal(("/usr/bin/python3.11", false, 0x400000UL, 0x421000UL), (maps[0].Path, maps[0].Deleted, maps[0].Start, maps[0].End));
        Assert.Equal(("/opt/my dir/libpython3.11.so.1.0", true, 0x1000UL), (maps[1].Path, maps[1].Deleted, maps[1].Offset));
        Assert.True(maps[1].IsExecutable);
        Assert.Equal("[stack]", maps[2].Path);
        Assert.Null(maps[3].Path);
    }

    [Fact]
    public void ProcMaps_KeepsEachLinesPathAndPermissions()
    {
        var maps = ProcMaps.Parse(
            "1000-2000 r--p 00000000 08:01 7 /usr/lib/libc.so.6\r\n" +
            "2000-3000 r-xp 00001000 08:01 7 /usr/lib/libc.so.6\n" +
            "3000-4000 rw-s 00000000 00:01 9 /dev/zero (deleted)\n" +
            "4000-5000 r--p 00002000 08:01 7 /usr/lib/libc.so.6\n" +
            "5000-6000 ---p 00000000 00:00 0 \n");
        Assert.Equal(["/usr/lib/libc.so.6", "/usr/lib/libc.so.6", "/dev/zero", "/usr/lib/libc.so.6", null], maps.Select(m => m.Path));
        Assert.Equal(["r--p", "r-xp", "rw-s", "r--p", "---p"], maps.Select(m => m.Permissions));
        Assert.Equal([false, false, true, false, false], maps.Select(m => m.Deleted));
        Assert.Equal([0x1000UL, 0x2000UL, 0x3000UL, 0x4000UL, 0x5000UL], maps.Select(m => m.Start));
        Assert.Equal(0x2000UL, maps[3].Offset);
    }

    [Fact]
    public void ProcMaps_ReadsALiveProcessLineForLine()
    {
        var lines = File.ReadAllLines("/proc/self/maps");
        var maps = ProcMaps.Read(Environment.ProcessId);
        // The test's own process maps and unmaps as it runs: compare what cannot change, the main executable's lines.
        var exe = new FileInfo("/proc/self/exe").LinkTarget!;
        Assert.Equal(lines.Count(l => l.EndsWith(" " + exe, StringComparison.Ordinal)), maps.Count(m => m.Path == exe));
        Assert.Contains(maps, m => m.Path == exe && m.IsExecutable);
    }

    [Theory]
    [InlineData("libpython3.11.so.1.0", true, false)]
    [InlineData("libpython3.13t.so.1.0", true, false)]
    [InlineData("libpython3.9.so", true, false)]
    [InlineData("libpython3.so", false, false)]
    [InlineData("python3.11", false, true)]
    [InlineData("python3", false, true)]
    [InlineData("python", false, true)]
    [InlineData("python3.13t", false, true)]
    [InlineData("python3.11-dbg", false, true)]
    [InlineData("python3.11-config", false, false)]
    [InlineData("sleep", false, false)]
    public void FileNameClassification(string name, bool lib, bool exe)
    {
        Assert.Equal(lib, PythonProcessFiles.IsLibPythonFileName(name));
        Assert.Equal(exe, PythonProcessFiles.IsPythonExecutableFileName(name));
    }
}
