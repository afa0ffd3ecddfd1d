using Pyprobe.Python.Versions;
using Xunit.Abstractions;
using Pyprobe.Python.Processes;

namespace Pyprobe.Usdt.Tests.PythonVersions;

/// <summary>Version detection on every interpreter available here, plus the decoding helpers.</summary>
public class PythonVersionDetectorTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("/usr/bin/python3.11", "3.11.2", PythonVersionSource.PyVersionSymbol)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "3.11.2", PythonVersionSource.PyVersionSymbol)]
    public void DebianPython311(string path, string version, PythonVersionSource source)
    {
        var d = PythonVersionDetector.DetectFromFile(path);
        Assert.Equal(version, d.Version.ToString());
        Assert.Equal(source, d.Source);
        Assert.Equal("final", d.Version.ReleaseLevel);
    }

    // version → expected source for the cached Debian builds
    [Theory]
    [InlineData("3.9", PythonVersionSource.GetVersionLiteral)] // a fixed-address executable: mov $literal, %ecx
    [InlineData("3.11", PythonVersionSource.PyVersionSymbol)]
    [InlineData("3.13", PythonVersionSource.DebugOffsets)]
    [InlineData("3.14", PythonVersionSource.DebugOffsets)]
    [InlineData("3.15", PythonVersionSource.DebugOffsets)]
    public void CachedDebianInterpreters_GiveTheFullVersion(string version, PythonVersionSource expected)
    {
        if (TestPythons.Get(version, output) is not { } py) return;
        foreach (var path in new[] { py.BinaryPath, py.LibPythonPath })
        {
            if (path is null) continue;
            var d = PythonVersionDetector.DetectFromFile(path);
            output.WriteLine($"{path}: {d.Version} via {d.Source}");
            Assert.Equal(py.FullVersion, d.Version.ToString());
            Assert.Equal(expected, d.Source);
        }
    }

    [Fact]
    public void PyenvBuilds_GiveTheFullVersion()
    {
        var all = TestPythons.Pyenv();
        if (all.Count == 0) TestPythons.Missing("pyenv builds", output);
        foreach (var (version, exe) in all)
        {
            // pyenv builds here are --enable-shared: the runtime (and Py_Version) is in libpython;
            // the thin executable only yields major.minor from its name.
            var lib = Directory.GetFiles(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(exe))!, "lib"), "libpython3.*.so.1.0").FirstOrDefault();
            var binary = lib ?? exe;
            var d = PythonVersionDetector.DetectFromFile(binary);
            output.WriteLine($"{binary}: {d.Version} via {d.Source}");
            var expected = PythonVersion.TryParse(version, out var v) ? v! : throw new InvalidOperationException(version);
            Assert.Equal(version, d.Version.ToString());
            // Before Py_Version (3.11), the literal Py_GetVersion names: position independent here (lea literal(%rip)).
            var method = expected.IsAtLeast(3, 13) ? PythonVersionSource.DebugOffsets
                : expected.IsAtLeast(3, 11) ? PythonVersionSource.PyVersionSymbol
                : PythonVersionSource.GetVersionLiteral;
            Assert.Equal(method, d.Source);
        }
    }

    [Fact]
    public void RunningProcess_Python311()
    {
        using var p = RunningProcess.Python("/usr/bin/python3.11");
        var d = PythonVersionDetector.DetectFromProcess(p.Pid);
        Assert.Equal("3.11.2", d.Version.ToString());
        Assert.Equal("/usr/bin/python3.11", d.Path);
    }

    [Fact]
    public void RunningProcess_LoaderStarted315()
    {
        if (TestPythons.Get("3.15", output) is not { } py) return;
        using var p = RunningProcess.Python(py.LauncherPath);
        var d = PythonVersionDetector.DetectFromProcess(p.Pid);
        Assert.Equal(py.FullVersion, d.Version.ToString());
        Assert.Equal(PythonVersionSource.DebugOffsets, d.Source);
    }

    [Fact]
    public void RunningProcess_PyenvWithoutProbes_StillDetected()
    {
        var pyenv = TestPythons.Pyenv().FirstOrDefault(x => x.Version.StartsWith("3.12.", StringComparison.Ordinal));
        if (pyenv.Binary is null)
        {
            TestPythons.Missing("pyenv 3.12", output);
            return;
        }
        using var p = RunningProcess.Python(pyenv.Binary);
        var d = PythonVersionDetector.DetectFromProcess(p.Pid);
        Assert.Equal(pyenv.Version, d.Version.ToString());
        Assert.EndsWith("libpython3.12.so.1.0", d.Path); // shared pyenv build: the runtime lives in libpython
    }

    [Fact]
    public void RunningProcess_NotPythonAndMissing()
    {
        using var p = RunningProcess.Start("/usr/bin/sleep", ["30"], maps => maps.Contains("/sleep", StringComparison.Ordinal));
        Assert.Throws<Pyprobe.Python.Processes.NotAPythonProcessException>(() => PythonVersionDetector.DetectFromProcess(p.Pid));
        Assert.Throws<Pyprobe.Usdt.ProcessNotFoundException>(() => PythonVersionDetector.DetectFromProcess(int.MaxValue));
    }

    [Fact]
    public void GeneratedElf_DebugOffsetsCookie_AndFileNameFallback()
    {
        using var dir = new TempDir();
        var w = new TestElfWriter { PyRuntime = [.. "xdebugpy"u8, 0xc1, 0x00, 0x0d, 0x03, 0, 0, 0, 0] }; // 0x030d00c1 = 3.13.0rc1
        var d = PythonVersionDetector.DetectFromFile(w.WriteTemp(dir, "python3.13"));
        Assert.Equal(("3.13.0rc1", PythonVersionSource.DebugOffsets, "candidate", 1), (d.Version.ToString(), d.Source, d.Version.ReleaseLevel, d.Version.Serial));

        var plain = new TestElfWriter().WriteTemp(dir, "libpython3.10.so.1.0");
        var f = PythonVersionDetector.DetectFromFile(plain);
        Assert.Equal((new PythonVersion(3, 10), PythonVersionSource.FileName), (f.Version, f.Source));

        var unknown = new TestElfWriter().WriteTemp(dir, "app");
        Assert.Throws<Pyprobe.Usdt.UsdtException>(() => PythonVersionDetector.DetectFromFile(unknown));
    }

    [Fact]
    public void GeneratedElf_RodataStringMustAgreeWithFileName()
    {
        using var dir = new TempDir();
        var w = new TestElfWriter { Rodata = [0, .. "3.2.0\0"u8, .. "3.9.2\0"u8, .. "2.0.1\0"u8] };
        var d = PythonVersionDetector.DetectFromFile(w.WriteTemp(dir, "python3.9"));
        Assert.Equal(("3.9.2", PythonVersionSource.VersionString), (d.Version.ToString(), d.Source));
        // A name saying 3.8 rejects the literal and falls back to the name.
        var d2 = PythonVersionDetector.DetectFromFile(w.WriteTemp(dir, "python3.8"));
        Assert.Equal(("3.8", PythonVersionSource.FileName), (d2.Version.ToString(), d2.Source));
    }

    [Theory]
    [InlineData(0x030d05f0UL, "3.13.5")]
    [InlineData(0x030f02f0UL, "3.15.2")]
    [InlineData(0x030e00a3UL, "3.14.0a3")]
    [InlineData(0x030c00b1UL, "3.12.0b1")]
    public void FromHex(ulong hex, string text)
    {
        Assert.True(PythonVersion.IsPlausibleHex(hex));
        Assert.Equal(text, PythonVersion.FromHex(hex).ToString());
    }

    [Theory]
    [InlineData("/usr/bin/python3.9", 3, 9)]
    [InlineData("libpython3.13t.so.1.0", 3, 13)]
    [InlineData("/x/python3.11-dbg", 3, 11)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libpython3.11.so", 3, 11)]
    public void FromFileName(string path, int major, int minor) =>
        Assert.Equal(new PythonVersion(major, minor), PythonVersionDetector.FromFileName(path));

    [Theory]
    [InlineData("/usr/bin/python3")]
    [InlineData("/usr/bin/sleep")]
    [InlineData("/usr/bin/python3.11-config")]
    public void FromFileName_NoVersion(string path) => Assert.Null(PythonVersionDetector.FromFileName(path));
}
