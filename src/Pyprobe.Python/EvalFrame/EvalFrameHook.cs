using Pyprobe.Bpf.Sys;
using Microsoft.Win32.SafeHandles;

namespace Pyprobe.Python.EvalFrame;

/// <summary>What one interpreter's PEP 523 hook (interp->eval_frame) held when pyprobe looked.</summary>
public enum HookState
{
    /// <summary>NULL: CPython's default, calls are inlined (3.11+); pyprobe may set it.</summary>
    Unset,
    /// <summary>&amp;_PyEval_EvalFrameDefault: set by pyprobe (this one or another).</summary>
    EvalFrameDefault,
    /// <summary>Something else (the -X perf trampoline, a debugger): left alone; it ends up calling _PyEval_EvalFrameDefault.</summary>
    Foreign,
}

/// <summary>
/// Sets interp->eval_frame = &amp;_PyEval_EvalFrameDefault in every interpreter of a 3.11+ process, so CPython stops
/// inlining Python-to-Python calls and every activation goes through _PyEval_EvalFrameDefault (cpython.md §7);
/// disposing puts NULL back where the value is still pyprobe's. Only NULL is ever overwritten: a hook someone else
/// set is left alone. Interpreters created later are covered by <see cref="InterpreterCreationWatch"/>. The 8-byte writes go through /proc/PID/mem, opened for writing only while writing.
/// A SIGKILLed pyprobe leaves the hook set: the program keeps working, a little slower (README).
/// </summary>
public sealed class EvalFrameHook : IDisposable
{
    private readonly int _pid;
    private readonly ulong _value;
    private readonly List<ulong> _written;

    private EvalFrameHook(int pid, ulong value, List<ulong> written, IReadOnlyList<HookState> before)
    {
        _pid = pid;
        _value = value;
        _written = written;
        Before = before;
    }

    /// <summary>Each interpreter's hook before pyprobe wrote anything (main interpreter first).</summary>
    public IReadOnlyList<HookState> Before { get; }

    /// <summary>How many interpreters pyprobe set the hook in.</summary>
    public int Written => _written.Count;

    /// <summary>Where interp->eval_frame lives in each interpreter, after checking the decoded offset.</summary>
    public static IReadOnlyList<ulong> Slots(CPythonProcess process)
    {
        var offset = process.Binary.EvalFrameHookOffset
            ?? throw new UnsupportedRuntimeException($"{process.Binary.DisplayPath}: cannot find interp->eval_frame (unknown code in _PyInterpreterState_GetEvalFrameFunc)");
        // PyInterpreterState starts with a few pointers and ends well below 64 KiB on every version; an offset
        // outside that range means the decoded instruction was not the one expected, and pyprobe writes nothing.
        if (offset is < 0x100 or > 0x10000 || offset % 8 != 0)
            throw new UnsupportedRuntimeException($"{process.Binary.DisplayPath}: decoded interp->eval_frame offset 0x{offset:x} is implausible; pyprobe will not write it");
        return process.Interpreters().Select(i => i + (ulong)offset).ToList();
    }

    /// <summary>The address written: &amp;_PyEval_EvalFrameDefault in this process.</summary>
    public static ulong HookValue(CPythonProcess process) =>
        process.Address(process.Binary.Symbols.EvalFrameDefault ?? throw new UnsupportedRuntimeException($"{process.Binary.DisplayPath} does not define _PyEval_EvalFrameDefault"));

    /// <summary>Each interpreter's hook now.</summary>
    public static IReadOnlyList<HookState> Inspect(CPythonProcess process)
    {
        var value = HookValue(process);
        return Slots(process).Select(slot => StateOf(process.Memory.ReadU64(slot), value)).ToList();
    }

    private static HookState StateOf(ulong current, ulong ours) => current == 0 ? HookState.Unset : current == ours ? HookState.EvalFrameDefault : HookState.Foreign;

    /// <summary>
    /// Sets the hook in every interpreter whose hook is NULL; the others are left as they are (and are observed
    /// anyway: a set hook already stops the inlining).
    /// </summary>
    public static EvalFrameHook Install(CPythonProcess process)
    {
        var value = HookValue(process);
        var slots = Slots(process);
        if (slots.Count == 0) throw new UnsupportedRuntimeException($"process {process.Pid} has no interpreter yet");
        var before = new List<HookState>();
        var written = new List<ulong>();
        using var mem = OpenForWriting(process.Pid);
        try
        {
            foreach (var slot in slots)
            {
                var state = StateOf(process.Memory.ReadU64(slot), value);
                before.Add(state);
                if (state != HookState.Unset) continue;
                Write(mem, process.Pid, slot, value);
                written.Add(slot);
            }
        }
        catch
        {
            foreach (var slot in written) TryRestore(mem, slot, value);
            throw;
        }
        return new EvalFrameHook(process.Pid, value, written, before);
    }

    /// <summary>
    /// Sets the hook in every interpreter of <paramref name="process"/> whose hook is NULL now: one created since
    /// <see cref="Install"/> (<see cref="InterpreterCreationWatch"/> calls this while its creator is stopped, before
    /// the new interpreter runs any code). Returns how many were set.
    /// </summary>
    public int Cover(CPythonProcess process)
    {
        var fresh = Slots(process).Where(slot => process.Memory.ReadU64(slot) == 0).ToList();
        if (fresh.Count == 0) return 0;
        using var mem = OpenForWriting(_pid);
        foreach (var slot in fresh)
        {
            Write(mem, _pid, slot, _value);
            // An interpreter at an address pyprobe wrote before (the old one was freed) is already listed.
            if (!_written.Contains(slot)) _written.Add(slot);
        }
        return fresh.Count;
    }

    /// <summary>
    /// Puts NULL back in every interpreter pyprobe set that still exists (the list is read again: a destroyed
    /// interpreter's memory may belong to something else now), if the value there is still pyprobe's.
    /// </summary>
    public void Dispose()
    {
        if (_written.Count == 0) return;
        try
        {
            var live = LiveSlots();
            using var mem = OpenForWriting(_pid);
            foreach (var slot in _written.Where(live.Contains)) TryRestore(mem, slot, _value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsdtException or UnsupportedRuntimeException)
        {
            // The process is gone: nothing left to restore.
        }
        _written.Clear();
    }

    private HashSet<ulong> LiveSlots()
    {
        using var process = CPythonProcess.Attach(_pid);
        return [.. Slots(process)];
    }

    private static void TryRestore(SafeFileHandle mem, ulong slot, ulong value)
    {
        Span<byte> current = stackalloc byte[8];
        try
        {
            if (RandomAccess.Read(mem, current, (long)slot) != 8) return;
            if (BinaryPrimitives.ReadUInt64LittleEndian(current) != value) return;
            current.Clear();
            RandomAccess.Write(mem, current, (long)slot);
        }
        catch (IOException)
        {
        }
    }

    private static SafeFileHandle OpenForWriting(int pid)
    {
        try
        {
            return File.OpenHandle($"/proc/{pid}/mem", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ProcessMemoryException($"cannot open /proc/{pid}/mem for writing: {e.Message} {Capabilities.ProcessAccessHint("setting the eval-frame hook")}", e);
        }
    }

    private static void Write(SafeFileHandle mem, int pid, ulong slot, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        try
        {
            RandomAccess.Write(mem, bytes, (long)slot);
        }
        catch (IOException e)
        {
            throw new ProcessMemoryException($"cannot write interp->eval_frame at 0x{slot:x} of process {pid}: {e.Message}", e);
        }
    }
}
