using Iced.Intel;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Tests.Runtime;

namespace Pyprobe.Python.Tests.EvalFrame;

/// <summary>
/// Where 3.13 runs a specialised class call's __init__ unseen by the hook: the allocation call is found once in each 3.13
/// build (pyenv's calls the local _PyType_NewManagedObject, Debian's LTO build an inlined copy), and the offsets its
/// program follows from the class in rdi lead, in a live process, to the class's own __init__ and its code object.
/// </summary>
public sealed class InlineInitSitesTests
{
    // The class call specialises after a few calls (CALL_ALLOC_AND_ENTER_INIT caches __init__ in the class).
    private const string Script = """
        import sys
        class Point:
            def __init__(self, x):
                self.x = x
        for i in range(100):
            Point(i)
        print(id(Point), id(Point.__dict__["__init__"]), id(Point.__init__.__code__), flush=True)
        sys.stdin.readline()
        """;

    [Theory]
    [InlineData("pyenv:3.13.0")]
    [InlineData("debian:3.13")]
    public void The_allocation_is_found_once_and_its_offsets_lead_to_init(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var process = CPythonProcess.Attach(python.Pid);
        var binary = process.Binary;
        var layout = binary.Facts.InlineInit ?? throw new Xunit.Sdk.XunitException($"{interpreter}: no inline __init__ layout");
        var sites = InlineInitSites.Find(binary.Elf, layout, out var reason) ?? throw new Xunit.Sdk.XunitException($"{interpreter}: {reason}");

        var ids = python.ReadyLine.Split(' ').Select(ulong.Parse).ToArray();
        var init = process.Memory.ReadU64(ids[0] + (ulong)layout.HeapTypeInit);
        Assert.Equal(ids[1], init);
        Assert.Equal(ids[2], process.Memory.ReadU64(init + (ulong)layout.FunctionCode));

        var decoder = Decoder.Create(64, new ByteArrayCodeReader(binary.Elf.ReadVirtual(sites.Allocation, 15)), sites.Allocation);
        decoder.Decode(out var call);
        Assert.Equal(FlowControl.Call, call.FlowControl);
        if (binary.Elf.FindSymbols("_PyType_NewManagedObject").FirstOrDefault(s => s.IsFunction && s.IsDefined) is { } allocate)
            Assert.Equal(allocate.Value, call.NearBranch64);
        else
            Assert.StartsWith("debian:", interpreter); // LTO inlined it into a copy of PyType_GenericAlloc's body

        var clear = binary.Elf.FindSymbols("_PyEval_FrameClearAndPop").First(s => s.IsFunction && s.IsDefined).Value;
        Assert.Contains(sites.FrameClear, new[] { clear, clear + 4 });
    }

    [Theory]
    [InlineData("pyenv:3.12.1")]
    [InlineData("debian:3.14")]
    [InlineData("debian:3.11")]
    public void Other_versions_check_the_hook_themselves(string interpreter)
    {
        using var python = new ParkedPython(interpreter, "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n");
        using var process = CPythonProcess.Attach(python.Pid);
        Assert.Null(process.Binary.Facts.InlineInit);
    }
}
