using System.Text.Json;

namespace Pyprobe.Cli.Tests;

/// <summary>`pyprobe list PATH` on Debian's /usr/bin/python3.11 (3.11.2, built --with-dtrace).</summary>
public class ListFileTests
{
    private const string Python311 = "/usr/bin/python3.11";

    private static readonly string[] Names =
    [
        "audit", "function__entry", "function__return", "gc__done", "gc__start",
        "import__find__load__done", "import__find__load__start", "line",
    ];

    // The stapsdt argument strings of Debian 3.11.2 (readelf -n; cpython.md §1.1).
    private static readonly Dictionary<string, string> Specs311 = new()
    {
        ["audit"] = "8@%rbx 8@%r15",
        ["function__entry"] = "8@%rbp 8@%r12 -4@%eax",
        ["function__return"] = "8@%rbp 8@%r12 -4@%eax",
        ["gc__done"] = "-8@%r12",
        ["gc__start"] = "-4@112(%rsp)",
        ["import__find__load__done"] = "8@%rax -4@%edx",
        ["import__find__load__start"] = "8@%rax",
        ["line"] = "8@%r14 8@%rax -4@%ebp",
    };

    private static readonly Dictionary<string, string> Arguments = new()
    {
        ["audit"] = "event:const char *,args:PyObject * (tuple)",
        ["function__entry"] = "filename:const char *,funcname:const char *,lineno:int",
        ["function__return"] = "filename:const char *,funcname:const char *,lineno:int",
        ["gc__done"] = "collected:Py_ssize_t",
        ["gc__start"] = "generation:int",
        ["import__find__load__done"] = "module:const char *,found:int",
        ["import__find__load__start"] = "module:const char *",
        ["line"] = "filename:const char *,funcname:const char *,lineno:int",
    };

    private static string BpftraceLines(string path) =>
        string.Concat(Names.Select(n => $"usdt:{path}:python:{n}\n"));

    private static void RequirePython311()
    {
        if (!File.Exists(Python311))
            Assert.Fail($"{Python311} is missing: install Debian's python3.11 (scripts/install-prerequisites.sh)");
    }

    [Fact]
    public void List_PrintsExactlyBpftracesLines()
    {
        RequirePython311();
        var r = PyprobeBinary.Run("list", Python311);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(BpftraceLines(Python311), r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void List_SymlinkIsPrintedAsGiven()
    {
        RequirePython311();
        Assert.Equal("python3.11", new FileInfo("/usr/bin/python3").LinkTarget);
        var r = PyprobeBinary.Run("list", "/usr/bin/python3");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(BpftraceLines("/usr/bin/python3"), r.Stdout);
    }

    [Fact]
    public void List_WithoutPath_UsesPython3FromPath()
    {
        RequirePython311();
        var r = PyprobeBinary.Run(["list"], new Dictionary<string, string?> { ["PATH"] = "/usr/bin:/bin" });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(BpftraceLines("/usr/bin/python3"), r.Stdout);
    }

    [Fact]
    public void List_NameWithoutSlash_IsLookedUpOnPath()
    {
        RequirePython311();
        var r = PyprobeBinary.Run(["list", "python3.11"], new Dictionary<string, string?> { ["PATH"] = "/nonexistent:/usr/bin:/bin" });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(BpftraceLines(Python311), r.Stdout);
    }

    [Fact]
    public void List_OutputFile_GetsTheOutput()
    {
        RequirePython311();
        var file = Path.Combine(Path.GetTempPath(), $"pyprobe-list-{Guid.NewGuid():N}.txt");
        try
        {
            var r = PyprobeBinary.Run("list", Python311, "-o", file);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal("", r.Stdout);
            Assert.Equal(BpftraceLines(Python311), File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Verbose_ShowsVersionArgumentsSitesAndVerdicts()
    {
        RequirePython311();
        var r = PyprobeBinary.Run("list", "-v", Python311);
        Assert.True(r.ExitCode == 0, r.ToString());
        var blocks = r.Stdout.Split("\n\n");
        Assert.Equal(1 + 8, blocks.Length);
        Assert.Equal($"{Python311}: CPython 3.11.2 (from the Py_Version symbol), ELF ET_EXEC (position-dependent executable), 8 probes", blocks[0].Split('\n')[0]);
        Assert.StartsWith("    functions  USDT, ", blocks[0].Split('\n')[1]);

        var byName = blocks.Skip(1).ToDictionary(b => b.Split('\n')[0]);
        Assert.Equal(Names.Select(n => $"usdt:{Python311}:python:{n}"), byName.Keys);

        var entry = byName[$"usdt:{Python311}:python:function__entry"].Split('\n');
        Assert.Equal("    arg0       filename  const char *", entry[1]);
        Assert.Equal("    arg1       funcname  const char *", entry[2]);
        Assert.Equal("    arg2       lineno    int", entry[3]);
        Assert.StartsWith("    fires      partly: ", entry[4]);
        Assert.Matches(@"^    semaphore  file offset 0x[0-9a-f]+ \(address 0x[0-9a-f]+\)$", entry[5]);
        Assert.Equal("    sites      1", entry[6]);
        Assert.Matches(@"^    site 1     address 0x[0-9a-f]+  file offset 0x[0-9a-f]+  8@%rbp 8@%r12 -4@%eax$", entry[7]);

        var ret = byName[$"usdt:{Python311}:python:function__return"].Split('\n');
        Assert.Equal("    fires      yes", ret[4]);

        var gc = byName[$"usdt:{Python311}:python:gc__start"].Split('\n');
        Assert.Equal("    arg0       generation  int", gc[1]);
        Assert.Equal("    fires      yes", gc[2]);
        Assert.EndsWith("  -4@112(%rsp)", gc[5]);

        var audit = byName[$"usdt:{Python311}:python:audit"].Split('\n');
        Assert.Equal("    arg1       args   PyObject * (tuple)", audit[2]);
    }

    [Fact]
    public void Json_HasVersionKindAndEveryProbeWithArgumentsAndSpecs()
    {
        RequirePython311();
        var r = PyprobeBinary.Run("list", "--format", "json", Python311);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(Python311, root.GetProperty("path").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("pid").ValueKind);
        Assert.Equal("executable", root.GetProperty("kind").GetString());
        var version = root.GetProperty("version");
        Assert.Equal(3, version.GetProperty("major").GetInt32());
        Assert.Equal(11, version.GetProperty("minor").GetInt32());
        Assert.Equal(2, version.GetProperty("micro").GetInt32());
        Assert.Equal("py_version_symbol", version.GetProperty("source").GetString());

        var probes = root.GetProperty("probes").EnumerateArray().ToList();
        Assert.Equal(8, probes.Count);
        Assert.Equal(Names, probes.Select(p => p.GetProperty("name").GetString()));
        foreach (var p in probes)
        {
            var name = p.GetProperty("name").GetString()!;
            Assert.Equal("python", p.GetProperty("provider").GetString());
            Assert.Equal(Arguments[name], string.Join(',', p.GetProperty("arguments").EnumerateArray()
                .Select(a => $"{a.GetProperty("name").GetString()}:{a.GetProperty("type").GetString()}")));
            var site = Assert.Single(p.GetProperty("sites").EnumerateArray().ToList());
            Assert.Equal(Specs311[name], site.GetProperty("spec").GetString());
            Assert.True(site.GetProperty("address").GetUInt64() > 0);
            Assert.True(site.GetProperty("file_offset").GetUInt64() > 0);
            Assert.True(site.GetProperty("semaphore_offset").GetUInt64() > 0);
            var expectedFires = name == "function__entry" ? "partly" : "yes";
            Assert.Equal(expectedFires, p.GetProperty("fires").GetString());
        }
        Assert.False(string.IsNullOrEmpty(probes[1].GetProperty("reason").GetString()));
        // Escaped only where JSON needs it: the entry gate's reason quotes 'line' as it is.
        Assert.Contains("'line' semaphore", r.Stdout);
        Assert.DoesNotContain("\\u00", r.Stdout);
    }

    [Theory]
    [InlineData("3.13", "audit gc__done gc__start import__find__load__done import__find__load__start")]
    [InlineData("3.15", "audit function__entry function__return gc__done gc__start import__find__load__done import__find__load__start")]
    public void Verbose_OtherVersions_DetectTheVersionAndGiveVerdicts(string version, string names)
    {
        var py = CachedPythons.Get(version);
        var r = PyprobeBinary.Run("list", "-v", py.BinaryPath);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith($"{py.BinaryPath}: CPython {py.FullVersion} (from _Py_DebugOffsets in .PyRuntime)", r.Stdout);
        Assert.Equal(names.Split(' ').Select(n => $"usdt:{py.BinaryPath}:python:{n}"),
            r.StdoutLines.Where(l => l.StartsWith("usdt:", StringComparison.Ordinal)));
        if (version == "3.15")
            Assert.Contains("    fires      partly: restored in 3.15", r.Stdout);
    }
}
