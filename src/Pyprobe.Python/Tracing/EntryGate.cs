namespace Pyprobe.Python.Tracing;

/// <summary>
/// CPython 3.11 emits function__entry only while its dispatch loop is in tracing mode, which it enters
/// when the `line` probe's semaphore is non-zero (cpython.md §1.4). Attaching to `line` itself would
/// trap on every line (~45x slower); instead a do-nothing uprobe is placed on Py_FinalizeEx, which runs
/// once at exit, carrying the `line` semaphore as its ref_ctr_offset. The kernel then raises that
/// semaphore in every traced process, including ones started later, and lowers it when the link closes,
/// even if pyprobe is killed. The gating itself still costs the target about 10x on call-heavy code.
/// </summary>
public static class EntryGate
{
    /// <summary>Where the holder uprobe goes: a function that runs once, at interpreter shutdown.</summary>
    public const string HolderSymbol = "Py_FinalizeEx";

    /// <summary>True when this target needs the gate for function__entry to fire.</summary>
    public static bool IsNeeded(TraceTarget target) => CPythonFacts.For(target.Version)?.FunctionEntryNeedsLineSemaphore == true;

    public static IUprobeLink Open(TraceTarget target, UprobeAttachMode mode)
    {
        var line = target.Binary.FindProbe(PythonProbeCatalog.Provider, "line")
            ?? throw new InvalidOperationException($"{target.DisplayPath} has no python:line probe, so 3.11 function entries cannot be enabled");
        var semaphore = line.Sites[0].SemaphoreFileOffset;
        var symbol = target.Binary.Elf.TryFindUniqueSymbol(HolderSymbol)
            ?? throw new InvalidOperationException($"{target.DisplayPath} does not export {HolderSymbol}; cannot enable 3.11 function entries");
        var offset = target.Binary.Elf.TryVirtualAddressToFileOffset(symbol.Value, executable: true)
            ?? throw new InvalidOperationException($"{HolderSymbol} of {target.DisplayPath} is not in an executable segment");

        var code = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble();
        using var program = BpfProgram.Load(new ProgramSpec("py_entry_gate", ProgramType.Kprobe, code.Bytecode, mode.ExpectedAttachType()));
        var site = new UprobeSite(offset, semaphore);
        var links = new List<IDisposable>();
        try
        {
            TargetLinks.Attach(mode, program, target, [site], links);
        }
        catch
        {
            foreach (var link in links) link.Dispose();
            throw;
        }
        return new LinkGroup(links);
    }

    private sealed class LinkGroup(List<IDisposable> links) : IUprobeLink
    {
        public int SiteCount => links.Count;
        public void Dispose() { foreach (var link in links) link.Dispose(); }
    }
}
