using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// `pyprobe list -p PID` on each cached Debian interpreter. 3.13–3.15 run through their own ld.so
/// (/proc/PID/exe is the loader), so the probes must be found in the mapped python binary, and
/// that file, as the process sees it, is what gets printed.
/// </summary>
public class ListProcessTests
{
    private const string All8 = "audit function__entry function__return gc__done gc__start import__find__load__done import__find__load__start line";
    private const string NoFunctionProbes = "audit gc__done gc__start import__find__load__done import__find__load__start";
    private const string WithFunctionProbes = "audit function__entry function__return gc__done gc__start import__find__load__done import__find__load__start";

    public static TheoryData<string, string> Expected => new()
    {
        { "3.9", All8 },
        { "3.11", All8 },
        { "3.13", NoFunctionProbes },
        { "3.14", NoFunctionProbes },
        { "3.15", WithFunctionProbes },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void ListPid_PrintsTheProbesOfTheMappedPythonBinary(string version, string names)
    {
        var py = CachedPythons.Get(version);
        using var process = RunningProcess.Python(py.LauncherPath);
        if (py.NeedsOwnLoader)
            Assert.Equal(py.LoaderPath, new FileInfo($"/proc/{process.Pid}/exe").LinkTarget);

        var r = PyprobeBinary.Run("list", "-p", process.Pid.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(string.Concat(names.Split(' ').Select(n => $"usdt:{py.BinaryPath}:python:{n}\n")), r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void ListPid_Json_NamesThePidTheFileAndTheVersion(string version, string names)
    {
        var py = CachedPythons.Get(version);
        using var process = RunningProcess.Python(py.LauncherPath);

        var r = PyprobeBinary.Run("list", "-p", process.Pid.ToString(), "--format", "json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(process.Pid, root.GetProperty("pid").GetInt32());
        Assert.Equal(py.BinaryPath, root.GetProperty("path").GetString());
        Assert.Equal(py.NeedsOwnLoader ? py.LoaderPath : py.BinaryPath, root.GetProperty("executable").GetString());
        Assert.Equal(py.FullVersion, root.GetProperty("version").GetProperty("text").GetString());
        Assert.Equal(names.Split(' '), root.GetProperty("probes").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
    }

    [Fact]
    public void ListPid_Verbose_HeaderNamesPidAndLoader()
    {
        var py = CachedPythons.Get("3.13");
        using var process = RunningProcess.Python(py.LauncherPath);
        var r = PyprobeBinary.Run("list", "-v", "-p", process.Pid.ToString());
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal($"{py.BinaryPath} (pid {process.Pid}, exe {py.LoaderPath}): CPython {py.FullVersion} (from _Py_DebugOffsets in .PyRuntime), ELF ET_EXEC (position-dependent executable), 5 probes",
            r.StdoutLines[0]);
    }
}
