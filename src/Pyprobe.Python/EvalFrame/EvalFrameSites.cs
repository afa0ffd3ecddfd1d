using Iced.Intel;
using Instruction = Iced.Intel.Instruction;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.EvalFrame;

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

    public static EvalFrameSites Find(CPythonBinary binary)
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
        return FromCode(symbol.Value, body, (address, count) => InOther(address) ? null : TryRead(elf, address, count), binary.DisplayPath, InOther);
    }

    /// <summary>
    /// Decodes <paramref name="body"/> (the whole function at <paramref name="start"/>) linearly, then follows
    /// every direct branch that leaves it through the code it reaches (<paramref name="read"/> gives bytes at a
    /// file address, or null), until a ret, an indirect jump or a jump back into the body.
    /// </summary>
    public static EvalFrameSites FromCode(ulong start, byte[] body, Func<ulong, int, byte[]?> read, string displayPath, Func<ulong, bool>? inOtherFunction = null)
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

    private static void FollowOutside(Queue<ulong> pending, ulong start, ulong end, Func<ulong, int, byte[]?> read, SortedSet<ulong> returns, string displayPath, Func<ulong, bool> inOtherFunction)
    {
        var seen = new HashSet<ulong>();
        var budget = OutsideBudget;
        while (pending.Count > 0)
        {
            var address = pending.Dequeue();
            if (!seen.Add(address)) continue;
            var code = read(address, 4096);
            if (code is null) continue;
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(code), address);
            while (decoder.IP < address + (ulong)code.Length - 16)
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

    private static bool IsReturn(in Instruction instruction) => instruction.FlowControl == FlowControl.Return;

    private static ulong? BranchTarget(in Instruction instruction) =>
        instruction.FlowControl is FlowControl.UnconditionalBranch or FlowControl.ConditionalBranch or FlowControl.Call
        && instruction.Op0Kind is OpKind.NearBranch64
            ? instruction.NearBranch64
            : null;

    private static byte[]? TryRead(ElfImage elf, ulong address, int count)
    {
        try
        {
            var segment = elf.LoadSegments.FirstOrDefault(s => s.Contains(address));
            if (segment is null) return null;
            var available = (int)Math.Min((ulong)count, segment.VirtualAddress + segment.FileSize - address);
            return available <= 0 ? null : elf.ReadVirtual(address, available);
        }
        catch (Exception e) when (e is Pyprobe.Usdt.UsdtException or ArgumentException or IOException)
        {
            return null;
        }
    }
}
