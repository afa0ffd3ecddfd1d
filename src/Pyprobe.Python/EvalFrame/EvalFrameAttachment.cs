using Pyprobe.Bpf.Links;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Sessions;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// Puts the eval-frame programs on one target's processes: the entry program at _PyEval_EvalFrameDefault (past
/// endbr64), the return program at each of its rets, and — for <see cref="FunctionEventSourceKind.EvalFrameWithHook"/> —
/// the hook, written after the probes are in place and restored when the session detaches (it is one of the
/// session's links, so every exit path that detaches restores it).
/// </summary>
public static class EvalFrameAttachment
{
    /// <summary>Attaches for every pid of <paramref name="target"/>; the cookies are the probe ids the records carry.</summary>
    public static void Attach(SessionCore core, TraceTarget target, FunctionEventSource source, uint? entryId, uint? returnId, EvalFrameMaps maps)
    {
        foreach (var pid in target.Pids)
        {
            using var process = CPythonProcess.Attach(pid);
            var binary = process.Binary;
            var sites = EvalFrameSites.Find(binary);
            var path = $"/proc/{pid}/root{binary.DisplayPath}";
            if (!File.Exists(path)) path = binary.OpenPath;
            // Returns first: a return with no open activation is dropped, an entry without its return would linger.
            if (returnId is uint rid)
            {
                using var program = core.Load("py_evalf_ret", EvalFrameProgram.Generate(EvalFrameProgramKind.Return, binary.Facts, binary.Layout, maps).Bytecode);
                var offsets = sites.Returns.Select(r => new UprobeSite(FileOffset(binary, r), 0, rid)).ToList();
                core.AddLink(TargetLinks.Attach(core.AttachMode, program, path, offsets, pid));
            }
            {
                // Returns need the entries' stack even when only returns are asked for: the entry program then only pushes.
                var kind = entryId is null ? EvalFrameProgramKind.PushOnly : EvalFrameProgramKind.Entry;
                using var program = core.Load("py_evalf_entry", EvalFrameProgram.Generate(kind, binary.Facts, binary.Layout, maps).Bytecode);
                core.AddLink(TargetLinks.Attach(core.AttachMode, program, path, [new UprobeSite(FileOffset(binary, sites.Entry), 0, entryId ?? 0)], pid));
            }
            if (source.Kind == FunctionEventSourceKind.EvalFrameWithHook)
                core.AddLink(EvalFrameHook.Install(process));
        }
    }

    private static ulong FileOffset(CPythonBinary binary, ulong address) =>
        binary.Elf.TryVirtualAddressToFileOffset(address, executable: true)
        ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath}: 0x{address:x} is not in an executable segment");
}
