using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.Analysis;

/// <summary>
/// What a session needs to key USDT function events by code object (<see cref="EntryFrameCode"/>): the form per
/// binary, and — for a shared libpython whose <c>_Py_tss_tstate</c> offset the loader decides — the map of
/// per-process offsets, created on first need and filled for the pids known when attaching.
/// </summary>
public sealed class EntryFrameCodes(SessionCore core, string tlsMapName)
{
    private readonly Dictionary<string, EntryFrameCode?> _byBinary = [];
    private BpfMap? _tlsOffsets;

    /// <summary>The map <see cref="EntryFrameCode.TlsOffsetsMap"/> binds to, or -1 before any target needed it.</summary>
    public int TlsOffsetsFd => _tlsOffsets?.Fd.Value ?? -1;

    /// <summary>How the target's function events find their code object, or null (they keep the probe's line).</summary>
    public EntryFrameCode? For(TraceTarget target)
    {
        if (_byBinary.TryGetValue(target.Binary.Path, out var known)) return known;
        EntryFrameCode? frameCode = null;
        if (CPythonBinary.DefinesRuntime(target.Binary.Elf))
        {
            try
            {
                frameCode = EntryFrameCode.For(CPythonBinary.FromElf(target.Binary.Elf, target.Binary.Path, target.DisplayPath),
                    () => KernelBtf.VmlinuxMemberOffset("task_struct.thread.fsbase"));
            }
            catch (UnsupportedRuntimeException) { }
        }
        return _byBinary[target.Binary.Path] = frameCode;
    }

    /// <summary>
    /// Where the target's form needs per-process offsets, puts each of its processes' offset in the map; a process
    /// whose interpreter cannot be read yet gets none, and its events keep the probe's line.
    /// </summary>
    public void RecordTlsOffsets(TraceTarget target)
    {
        if (For(target) is not { NeedsTlsOffsets: true }) return;
        _tlsOffsets ??= core.AddMap(new MapSpec(tlsMapName, MapType.Hash, 4, 8, 1024));
        foreach (var pid in target.Pids) RecordTlsOffset(pid);
    }

    private void RecordTlsOffset(int pid)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            var threadPointer = process.Interpreters().SelectMany(i => process.ThreadStates(i))
                .Select(t => process.Memory.ReadU64(t + (ulong)process.Binary.Layout.ThreadState.ThreadId)).FirstOrDefault(p => p != 0);
            if (threadPointer == 0 || process.ThreadStateTlsOffset(threadPointer) is not long offset) return;
            _tlsOffsets!.Update(BitConverter.GetBytes(pid), BitConverter.GetBytes(offset));
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or UsdtException or IOException or UnauthorizedAccessException) { }
    }
}
