using System.Globalization;
using Pyprobe.Python.Profiling;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Python.Sampling;

/// <summary>
/// A process's native code as <c>record --native</c> and <c>dump --native</c> name it: the files it has mapped (their
/// <c>.eh_frame</c> tables unwind a stack), where its interpreter and its eval loop are among them, and the names given so
/// far. A frame is named by its function's symbol, or <c>FILE+0xOFFSET</c> of the function's start where the file names
/// none (a stripped library's static code), and told apart as the eval loop, the interpreter's other code, or another
/// file's (<see cref="NativeFrameRole"/>), which is how <see cref="MixedStack"/> merges it with the Python frames.
/// </summary>
public sealed class NativeCode(CPythonProcess process)
{
    private readonly (ulong Start, ulong End)[] _interpreter = InterpreterRanges(process);
    private readonly (ulong Start, ulong End)[] _evalLoop =
        EvalLoopCode.Ranges(process.Binary.Elf).Select(r => (process.Address(r.Start), process.Address(r.End))).ToArray();
    private readonly Dictionary<ulong, NativeFrame> _names = [];

    public NativeModules Modules { get; } = NativeModules.ForProcess(process.Pid);

    public bool EachFrameIsARun { get; } = process.Layout.Frame is { IsEntry: null, FirstNonFrameOwner: null };

    /// <summary>
    /// Unwinds a stack (<see cref="NativeUnwinder"/>; <paramref name="counters"/> is the frame limit and scratch) and
    /// names its frames, innermost first, into <paramref name="into"/>; returns how the unwinding ended.
    /// </summary>
    public NativeUnwindStop Unwind(ulong ip, ulong sp, ulong bp, ReadOnlySpan<byte> stack, Span<ulong> counters, List<NativeFrame> into)
    {
        var stop = NativeUnwinder.Unwind(ip, sp, bp, stack, Modules, counters, out var count);
        into.Clear();
        // Past the first frame each address is a return address: the call is the byte before it (a call can be a
        // function's last instruction, its return address then the next function's first).
        for (var i = 0; i < count; i++) into.Add(Name(i == 0 ? counters[i] : counters[i] - 1));
        return stop;
    }

    /// <summary>Names the frame whose code is at <paramref name="pc"/>.</summary>
    public NativeFrame Name(ulong pc)
    {
        if (_names.TryGetValue(pc, out var known)) return known;
        var role = _evalLoop.Any(r => pc >= r.Start && pc < r.End) ? NativeFrameRole.EvalLoop
            : _interpreter.Any(r => pc >= r.Start && pc < r.End) ? NativeFrameRole.Interpreter
            : NativeFrameRole.Other;
        var frame = new NativeFrame(Symbolize(pc), role);
        if (_names.Count > 1 << 16) _names.Clear();
        _names[pc] = frame;
        return frame;
    }

    private StackFrame Symbolize(ulong pc)
    {
        if (!Modules.TryLocate(pc, out var module, out var vaddr)) return StackFrame.Native(string.Create(CultureInfo.InvariantCulture, $"0x{pc:x}"), "?");
        var file = Path.GetFileName(module.Path);
        if (NativeSymbolizer.FunctionName(module.Elf, vaddr) is { } name) return StackFrame.Native(name, file);
        var start = module.Frames?.TryFindFunction(vaddr)?.Start ?? vaddr;
        return StackFrame.Native(string.Create(CultureInfo.InvariantCulture, $"{file}+0x{start:x}"), file);
    }

    /// <summary>The interpreter's executable segments in the process (the executable's, or libpython's).</summary>
    private static (ulong, ulong)[] InterpreterRanges(CPythonProcess process) =>
        process.Binary.Elf.LoadSegments.Where(s => s.Executable)
            .Select(s => (process.Address(s.VirtualAddress), process.Address(s.VirtualAddress + s.MemorySize))).ToArray();
}
