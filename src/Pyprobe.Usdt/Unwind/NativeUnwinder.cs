using System.Buffers.Binary;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// Walks a sampled thread's native stack from its registers and a copy of its stack, as perf's
/// <c>--call-graph dwarf</c> does in user space: at each frame the .eh_frame row for the code address gives the CFA
/// (the caller's rsp), where the return address and the caller's rbp were saved; those are read from the copy.
/// Only rip, rsp and rbp are tracked: x86-64 CFA rules use rsp or rbp, and no other register is needed to go on.
/// </summary>
public static class NativeUnwinder
{
    /// <summary>
    /// Unwinds from <paramref name="ip"/>, <paramref name="sp"/>, <paramref name="bp"/> with <paramref name="stack"/>
    /// holding the bytes at [<paramref name="sp"/>, <paramref name="sp"/> + length), up to <paramref name="maxFrames"/>
    /// program counters.
    /// </summary>
    public static NativeUnwind Unwind(ulong ip, ulong sp, ulong bp, ReadOnlySpan<byte> stack, INativeCodeMap modules, int maxFrames)
    {
        var counters = new ulong[Math.Max(maxFrames, 0)];
        var stop = Unwind(ip, sp, bp, stack, modules, counters, out var count);
        return new NativeUnwind(counters.AsSpan(0, count).ToArray(), stop);
    }

    /// <summary>
    /// As <see cref="Unwind(ulong, ulong, ulong, ReadOnlySpan{byte}, INativeCodeMap, int)"/>, writing the program
    /// counters to <paramref name="into"/> (its length is the frame limit): for a sample loop that reuses one buffer.
    /// </summary>
    public static NativeUnwindStop Unwind(ulong ip, ulong sp, ulong bp, ReadOnlySpan<byte> stack, INativeCodeMap modules, Span<ulong> into, out int count)
    {
        var copyStart = sp;
        var bpKnown = true;
        var interrupted = true; // frame 0 stopped at ip itself: ip is no return address
        count = 0;
        while (true)
        {
            if (count == into.Length) return NativeUnwindStop.MaxFrames;
            into[count++] = ip;
            // A return address follows its call: the byte before it is in the calling function (a call may end it).
            var lookup = interrupted ? ip : ip - 1;
            if (!modules.TryLocate(lookup, out var module, out var vaddr)) return NativeUnwindStop.NoModule;
            if (module.Frames is not { } frames || !frames.TryFindRow(vaddr, out var row)) return NativeUnwindStop.NoUnwindInfo;

            ulong cfa;
            switch (row.Cfa)
            {
                case CfaKind.Register when row.CfaRegister == DwarfRegister.Rsp:
                    cfa = sp + (ulong)row.CfaOffset;
                    break;
                case CfaKind.Register when row.CfaRegister == DwarfRegister.Rbp && bpKnown:
                    cfa = bp + (ulong)row.CfaOffset;
                    break;
                case CfaKind.PltExpression:
                    cfa = sp + 8 + ((ip & 15) >= row.PltThreshold ? 8UL : 0);
                    break;
                default:
                    return NativeUnwindStop.Unsupported;
            }
            // The caller's frame is above this one; a CFA at or below rsp would walk in circles.
            if (cfa <= sp) return NativeUnwindStop.BadAddress;

            ulong returnAddress;
            switch (row.ReturnAddress.Kind)
            {
                case RegisterRuleKind.Undefined:
                    return NativeUnwindStop.Complete;
                case RegisterRuleKind.AtCfaOffset:
                    if (!TryRead(stack, copyStart, cfa + (ulong)row.ReturnAddress.Offset, out returnAddress)) return NativeUnwindStop.OutsideCopy;
                    break;
                default:
                    return NativeUnwindStop.Unsupported;
            }

            switch (row.Rbp.Kind)
            {
                case RegisterRuleKind.Unchanged:
                    break;
                // A save slot below the stack pointer was popped already (an epilogue whose rows still name it): rbp holds
                // the caller's value again.
                case RegisterRuleKind.AtCfaOffset when cfa + (ulong)row.Rbp.Offset < sp:
                    break;
                case RegisterRuleKind.AtCfaOffset:
                    if (!TryRead(stack, copyStart, cfa + (ulong)row.Rbp.Offset, out bp)) return NativeUnwindStop.OutsideCopy;
                    bpKnown = true;
                    break;
                default:
                    bpKnown = false; // only a problem if some caller's CFA is rbp-based
                    break;
            }

            if (returnAddress == 0 || !modules.IsExecutable(returnAddress)) return NativeUnwindStop.BadAddress;
            sp = cfa;
            ip = returnAddress;
            // Above a signal trampoline (augmentation "S") the return address is where the interrupted code resumes, not after a call.
            interrupted = row.IsSignalFrame;
        }
    }

    /// <summary>The 8 bytes at stack address <paramref name="address"/>, if the copy from <paramref name="copyStart"/> holds them.</summary>
    private static bool TryRead(ReadOnlySpan<byte> stack, ulong copyStart, ulong address, out ulong value)
    {
        value = 0;
        if (address < copyStart) return false;
        var offset = address - copyStart;
        if (offset > (ulong)stack.Length || (ulong)stack.Length - offset < 8) return false;
        value = BinaryPrimitives.ReadUInt64LittleEndian(stack[(int)offset..]);
        return true;
    }
}
