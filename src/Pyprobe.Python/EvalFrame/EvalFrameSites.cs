using Iced.Intel;
using Instruction = Iced.Intel.Instruction;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.EvalFrame;

/// <summary>Fills <paramref name="into"/> with the code at a file address; how many bytes (0: none there).</summary>
public delegate int CodeBytes(ulong address, Span<byte> into);

/// <summary>
/// Where _PyEval_EvalFrameDefault is probed in one binary: its entry (past an <c>endbr64</c>, which the kernel
/// cannot emulate and would single-step, about 4.5 µs a hit on Debian's CET builds) and every <c>ret</c>
/// instruction, found by decoding the function (a uretprobe is no use: the kernel keeps at most 64 nested
/// return instances, and Python stacks are deeper). All addresses are file (link-time) addresses.
/// </summary>
/// <param name="Function">The symbol's address.</param>
/// <param name="Entry">The first instruction after an optional endbr64.</param>
/// <param name="Returns">Every ret of the function, including those in code it jumps out to (gcc's .cold parts).</param>
public sealed record EvalFrameSites(ulong Function, ulong Entry, IReadOnlyList<ulong> Returns)
{
    /// <summary>Instructions decoded at most in code outside the symbol (cold parts) before giving up.</summary>
    private const int OutsideBudget = 20000;

    // Per binary (one instance per file: CPythonProcess keeps them), found once: by FindAhead's thread, the exec
    // follower or the attach, whichever asks first; the others wait for that answer (or its exception).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<CPythonBinary, Lazy<EvalFrameSites>> Found = new();

    /// <summary>The sites of <paramref name="binary"/>, found on first use (by <see cref="FindAhead"/> or here).</summary>
    /// <exception cref="UnsupportedRuntimeException">The function cannot be probed this way.</exception>
    public static EvalFrameSites Find(CPythonBinary binary) =>
        Found.GetValue(binary, b => new Lazy<EvalFrameSites>(() => Locate(b), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>
    /// Starts finding <paramref name="binary"/>'s sites on a thread of its own, for an attach that will ask soon:
    /// decoding _PyEval_EvalFrameDefault (its decoder's tables built at first use) is 3–4 ms of a launch here, while the
    /// rest of the target is resolved and the session makes its maps. A failure is left for the attach to meet.
    /// </summary>
    public static void FindAhead(CPythonBinary binary) => Bpf.Launch.UnwaitedThread.Start(() => _ = Find(binary), "pyprobe sites");

    private static EvalFrameSites Locate(CPythonBinary binary)
    {
        var elf = binary.Elf;
        var symbol = elf.FindSymbols("_PyEval_EvalFrameDefault").FirstOrDefault(s => s.IsFunction && s.IsDefined && s.Size > 0)
            ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath} does not define _PyEval_EvalFrameDefault with a size");
        var body = elf.ReadVirtual(symbol.Value, checked((int)symbol.Size));
        // Code inside another named function is never ours (a tail call, or a cold part falling through after a
        // call that does not return); gcc's own "_PyEval_EvalFrameDefault.cold" part is. Asked only about branch
        // targets outside the body: a build without cold parts never needs the ranges (every function of the file).
        (ulong Start, ulong End)[]? others = null;
        bool InOther(ulong address)
        {
            others ??= elf.FunctionRanges(excludedPrefix: "_PyEval_EvalFrameDefault");
            int lo = 0, hi = others.Length - 1;
            while (lo <= hi)
            {
                var mid = (lo + hi) / 2;
                if (others[mid].End <= address) lo = mid + 1;
                else if (others[mid].Start > address) hi = mid - 1;
                else return true;
            }
            return false;
        }
        return FromCode(symbol.Value, body, (address, into) => InOther(address) ? 0 : ReadCode(elf, address, into), binary.DisplayPath, InOther);
    }

    /// <summary>
    /// Decodes <paramref name="body"/> (the whole function at <paramref name="start"/>) linearly, then follows
    /// every direct branch that leaves it through the code it reaches (<paramref name="read"/> gives bytes at a
    /// file address, none where there are none), until a ret, an indirect jump or a jump back into the body.
    /// </summary>
    public static EvalFrameSites FromCode(ulong start, byte[] body, CodeBytes read, string displayPath, Func<ulong, bool>? inOtherFunction = null)
    {
        var end = start + (ulong)body.Length;
        var returns = new SortedSet<ulong>();
        var outside = new Queue<ulong>();
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(body), start);
        var first = true;
        ulong entry = start;
        while (decoder.IP < end)
        {
            decoder.Decode(out var instruction);
            if (instruction.IsInvalid) throw new UnsupportedRuntimeException($"{displayPath}: cannot decode _PyEval_EvalFrameDefault at 0x{instruction.IP:x}");
            if (first)
            {
                // endbr64 is a marker the CPU checks on indirect jumps; probing after it changes nothing.
                if (instruction.Code == Code.Endbr64) entry = instruction.NextIP;
                first = false;
            }
            if (IsReturn(instruction)) returns.Add(instruction.IP);
            if (instruction.FlowControl != FlowControl.Call && BranchTarget(instruction) is ulong target && (target < start || target >= end))
            {
                // A jump to another function would return through that function's ret, which pyprobe does not probe.
                if (inOtherFunction?.Invoke(target) == true)
                    throw new UnsupportedRuntimeException($"{displayPath}: _PyEval_EvalFrameDefault jumps into another function at 0x{instruction.IP:x} (a tail call), so its returns cannot all be probed");
                outside.Enqueue(target);
            }
        }
        FollowOutside(outside, start, end, read, returns, displayPath, inOtherFunction ?? (_ => false));
        if (returns.Count == 0) throw new UnsupportedRuntimeException($"{displayPath}: found no ret in _PyEval_EvalFrameDefault");
        return new EvalFrameSites(start, entry, returns.ToList());
    }

    private static void FollowOutside(Queue<ulong> pending, ulong start, ulong end, CodeBytes read, SortedSet<ulong> returns, string displayPath, Func<ulong, bool> inOtherFunction)
    {
        var seen = new HashSet<ulong>();
        var budget = OutsideBudget;
        // One buffer of code refilled as the blocks leave it, one decoder moved to each block: a 4 KB array and a decoder
        // per block made Debian's 3.13 (557 blocks outside the body, 4,349 instructions) 8-9 ms of every attach.
        var window = new CodeWindow(read);
        while (pending.Count > 0)
        {
            var address = pending.Dequeue();
            if (!seen.Add(address)) continue;
            if (window.MoveTo(address, BlockBytes) is not { } decoder) continue;
            var limit = Math.Min(address + BlockBytes, window.End) - 16;
            while (decoder.IP < limit)
            {
                if (--budget < 0) throw new UnsupportedRuntimeException($"{displayPath}: the code _PyEval_EvalFrameDefault jumps out to is too large to follow");
                if (inOtherFunction(decoder.IP)) break;
                decoder.Decode(out var instruction);
                if (instruction.IsInvalid) break;
                if (IsReturn(instruction))
                {
                    returns.Add(instruction.IP);
                    break;
                }
                var target = BranchTarget(instruction);
                if (target is ulong t && (t < start || t >= end) && !inOtherFunction(t) && instruction.FlowControl != FlowControl.Call) pending.Enqueue(t);
                // A direct jump ends the block (its target is queued or in the body); an indirect one cannot be followed.
                if (instruction.FlowControl is FlowControl.UnconditionalBranch or FlowControl.IndirectBranch or FlowControl.Interrupt) break;
                if (instruction.Code == Code.Ud2) break;
            }
        }
    }

    /// <summary>How far a block outside the body is followed from its start at most.</summary>
    private const int BlockBytes = 4096;

    /// <summary>
    /// Code outside the body, read <see cref="WindowBytes"/> at a time into one buffer, with one decoder that is moved
    /// to each block's start (Iced decodes from its reader's position at the decoder's IP).
    /// </summary>
    private sealed class CodeWindow(CodeBytes read)
    {
        private const int WindowBytes = 64 << 10;
        private readonly byte[] _buffer = new byte[WindowBytes];
        private ulong _start;
        private int _length;
        private ByteArrayCodeReader? _reader;
        private Decoder? _decoder;

        /// <summary>The end of the bytes read (a file address).</summary>
        public ulong End => _start + (ulong)_length;

        /// <summary>The decoder at <paramref name="address"/> with up to <paramref name="ahead"/> bytes after it in the window (fewer only at the end of the code); null where nothing can be read there.</summary>
        public Decoder? MoveTo(ulong address, int ahead)
        {
            if (_decoder is null || address < _start || address + (ulong)ahead > End)
            {
                _length = read(address, _buffer);
                if (_length <= 0)
                {
                    _decoder = null;
                    return null;
                }
                _start = address;
                _reader = new ByteArrayCodeReader(_buffer, 0, _length);
                _decoder = Decoder.Create(64, _reader, address);
            }
            _reader!.Position = (int)(address - _start);
            _decoder.IP = address;
            return _decoder;
        }
    }

    private static bool IsReturn(in Instruction instruction) => instruction.FlowControl == FlowControl.Return;

    private static ulong? BranchTarget(in Instruction instruction) =>
        instruction.FlowControl is FlowControl.UnconditionalBranch or FlowControl.ConditionalBranch or FlowControl.Call
        && instruction.Op0Kind is OpKind.NearBranch64
            ? instruction.NearBranch64
            : null;

    private static int ReadCode(ElfImage elf, ulong address, Span<byte> into)
    {
        try
        {
            return elf.ReadVirtualInto(address, into);
        }
        catch (Exception e) when (e is Pyprobe.Usdt.UsdtException or IOException)
        {
            return 0;
        }
    }
}
