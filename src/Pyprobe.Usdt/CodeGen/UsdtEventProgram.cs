using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.CpuQueues;
using Pyprobe.Bpf.Emit;


namespace Pyprobe.Usdt.CodeGen;

/// <summary>The maps a generated event program writes to.</summary>
/// <param name="RingFd">BPF_MAP_TYPE_RINGBUF the records go to.</param>
/// <param name="ScratchFd">
/// Per-CPU array with one entry of <see cref="UsdtEventProgram.ScratchValueSize"/> bytes: two u64 counters
/// (hits, lost) and the queue output's work bytes followed by the record being built, so one lookup serves them all.
/// </param>
/// <param name="TargetsFd">Hash map of allowed TGIDs (u32 → u8), or null to accept every process.</param>
/// <param name="Tids">Thread ids to keep (compared in the kernel), or null for every thread.</param>
/// <param name="WakeupThreshold">
/// Bytes waiting in the ring above which a record wakes the reader. Below it records are committed
/// without a wakeup (the reader polls on a short timer): one wakeup per event costs the traced
/// program more than the event itself.
/// </param>
/// <param name="Tgids">Processes to keep, compared as constants in place of the <paramref name="TargetsFd"/> lookup, or null.</param>
/// <param name="Queues">The queue per CPU records go to (the ring then only wakes the reader), or null: the ring.</param>
public sealed record UsdtEventMaps(int RingFd, int ScratchFd, int? TargetsFd, IReadOnlyList<int>? Tids = null, int WakeupThreshold = 0, IReadOnlyList<int>? Tgids = null, CpuQueueMap? Queues = null);

/// <summary>How an event program filters and wakes, independent of the maps' fds.</summary>
/// <param name="FilterTargets">Keep only processes in <see cref="EventProgramParts.TargetsMap"/>.</param>
/// <param name="Tids">Thread ids to keep, or null for every thread.</param>
/// <param name="WakeupThreshold">See <see cref="UsdtEventMaps.WakeupThreshold"/>.</param>
/// <param name="ProbeId">The probe id every record carries, when the program serves one probe; null: the attach cookie's.</param>
/// <param name="WakeupCheckEvery">See <see cref="EventProgramParts.EmitSend"/>.</param>
/// <param name="Tgids">Processes to keep, compared as constants (then <paramref name="FilterTargets"/> is not needed), or null.</param>
/// <param name="Queues">Send records to the queue per CPU of this layout, or null: the ring.</param>
public sealed record UsdtEventOptions(bool FilterTargets, IReadOnlyList<int>? Tids = null, int WakeupThreshold = 0, uint? ProbeId = null,
    int WakeupCheckEvery = EventProgramParts.WakeupCheckEvery, IReadOnlyList<int>? Tgids = null, CpuQueueLayout? Queues = null);

/// <summary>
/// Code a caller adds to an event program after the arguments are in the record (at <c>scratch</c> +
/// <see cref="EventProgramParts.Field"/>) and before its strings are copied: it may change values, set flag bits in the
/// truncated-string word, or jump to <paramref name="drop"/> to send nothing. It must keep R6–R9.
/// </summary>
public delegate void RecordRewrite(InstructionBuilder code, Register ctx, Register scratch, string drop);

/// <summary>
/// Generates the program for one group of USDT sites that share an argument spec: it reads every
/// argument, copies the C-string arguments whole, and sends one exactly-sized record to the ring
/// buffer. A record the ring cannot take is counted as lost, never dropped silently.
/// </summary>
public static class UsdtEventProgram
{
    public const int HitsCounterOffset = EventProgramParts.HitsCounterOffset;
    public const int LostCounterOffset = EventProgramParts.LostCounterOffset;
    private const int RecordOffset = EventProgramParts.RecordOffset;

    /// <summary>LRU hash of strings already sent (<see cref="StringInterning"/>).</summary>
    public const string SentStringsMap = "sent";

    public static int ScratchValueSize(UsdtEventLayout layout) => (RecordOffset + layout.MaxRecordSize + 7) / 8 * 8;

    /// <summary>Generates the program and binds it to the session's maps.</summary>
    /// <param name="rewrite">Code run once the arguments are in the record (see <see cref="RecordRewrite"/>), or null.</param>
    /// <param name="rewriteMaps">Maps <paramref name="rewrite"/> uses, by name.</param>
    /// <param name="probeId">The id of the one probe the program serves (its records carry it as a constant), or null for the attach cookie's.</param>
    public static AssembledProgram Generate(UsdtEventLayout layout, IReadOnlyList<UsdtArgument> arguments, UsdtEventMaps maps, ulong siteAddress = 0, Func<string, ulong>? resolveSymbol = null,
        RecordRewrite? rewrite = null, IReadOnlyDictionary<string, int>? rewriteMaps = null, uint? probeId = null)
    {
        var fds = EventProgramParts.Bindings(maps.RingFd, maps.ScratchFd, maps.TargetsFd, maps.Queues);
        if (layout.Interning is { } interning) fds[SentStringsMap] = interning.MapFd;
        if (layout.Pairs is { } pairs)
        {
            fds[StringPairMemo.MapName] = pairs.MapFd;
            fds[StringPairMemo.EpochsMap] = pairs.EpochsFd;
        }
        foreach (var (name, fd) in rewriteMaps ?? new Dictionary<string, int>()) fds[name] = fd;
        return Build(layout, arguments, new UsdtEventOptions(maps.TargetsFd is not null && maps.Tgids is null, maps.Tids, maps.WakeupThreshold, probeId, Tgids: maps.Tgids, Queues: maps.Queues?.Layout), siteAddress, resolveSymbol, rewrite).BindMaps(fds);
    }

    /// <summary>
    /// Generates the program with its maps by name (<see cref="EventProgramParts.RingMap"/>, <see cref="EventProgramParts.ScratchMap"/>,
    /// <see cref="EventProgramParts.TargetsMap"/> when filtering, <see cref="SentStringsMap"/> when interning), to bind later.
    /// </summary>
    public static AssembledProgram Build(UsdtEventLayout layout, IReadOnlyList<UsdtArgument> arguments, UsdtEventOptions options, ulong siteAddress = 0, Func<string, ulong>? resolveSymbol = null,
        RecordRewrite? rewrite = null)
    {
        if (arguments.Count < layout.ArgumentCount)
            throw new UsdtException($"the probe has {arguments.Count} arguments, the layout expects {layout.ArgumentCount}");

        var ctx = Register.R6;
        var pidTgid = Register.R7;
        var scratch = Register.R8;
        var stringBytes = Register.R9;
        var code = new InstructionBuilder();
        const string exit = "out";

        EventProgramParts.EmitStart(code, ctx, pidTgid, scratch, options.FilterTargets, options.Tids, exit, tgids: options.Tgids);
        EventProgramParts.EmitHeader(code, ctx, pidTgid, scratch, options.ProbeId);
        EmitArguments(code, layout, arguments, ctx, scratch, siteAddress, resolveSymbol);
        rewrite?.Invoke(code, ctx, scratch, exit);
        EmitStrings(code, layout, scratch, pidTgid, stringBytes);
        EventProgramParts.EmitSend(code, scratch, stringBytes, layout.StringsOffset, options.WakeupThreshold, options.WakeupCheckEvery, options.Queues);
        code.Label(exit)
            .Mov64(Register.R0, 0)
            .Exit();
        return code.Assemble();
    }

    /// <summary>
    /// Clears the truncated-string word and stores every argument's value in the record (a string's is its address).
    /// Part of <see cref="Build"/>; public so the bench can build the program cut down step by step. Clobbers R0–R5.
    /// </summary>
    public static void EmitArguments(InstructionBuilder code, UsdtEventLayout layout, IReadOnlyList<UsdtArgument> arguments, Register ctx, Register scratch, ulong siteAddress = 0,
        Func<string, ulong>? resolveSymbol = null)
    {
        code.StoreImm(MemorySize.Word, scratch, Field(UsdtEventLayout.TruncatedOffset), 0);
        var argumentSlot = code.Stack.Allocate(8, "argument");
        for (var i = 0; i < layout.ArgumentCount; i++)
        {
            UsdtArgumentEmitter.EmitLoad(code, arguments[i], ctx, argumentSlot, siteAddress, resolveSymbol);
            code.StoreMem(MemorySize.DoubleWord, scratch, Field(UsdtEventLayout.ValueOffset(i)), Register.R0);
        }
    }

    /// <summary>
    /// Copies the string arguments whole after the fixed part (or, interned, only those not sent before) and leaves their
    /// total length in <paramref name="stringBytes"/>. Part of <see cref="Build"/>. Clobbers R0–R5.
    /// </summary>
    public static void EmitStrings(InstructionBuilder code, UsdtEventLayout layout, Register scratch, Register pidTgid, Register stringBytes)
    {
        code.Mov64(stringBytes, 0);
        if (layout.Pairs is { } pairs)
        {
            EmitPair(code, layout, pairs, scratch, pidTgid, stringBytes);
            return;
        }
        EmitEachString(code, layout, scratch, pidTgid, stringBytes);
    }

    /// <summary>
    /// The strings of a pair layout (<see cref="StringPairMemo"/>): a pair seen before goes by reference without a read;
    /// otherwise both are copied whole, and a string that is a compact ASCII str (read from its header) copied whole gets
    /// its fingerprint, so user space remembers it; with both, the pair is remembered.
    /// </summary>
    private static void EmitPair(InstructionBuilder code, UsdtEventLayout layout, StringPairMemo pairs, Register scratch, Register pidTgid, Register stringBytes)
    {
        var labels = code.Scope("pair");
        short first = Field(UsdtEventLayout.ValueOffset(layout.StringArguments[0])), second = Field(UsdtEventLayout.ValueOffset(layout.StringArguments[1]));
        short[] fingerprints = [Field(layout.FingerprintOffset(0)), Field(layout.FingerprintOffset(1))];
        pairs.EmitFind(code, pidTgid, scratch, first, second, fingerprints, EventProgramParts.PairWorkOffset, labels["miss"]);
        code.StoreImm(MemorySize.HalfWord, scratch, Field(layout.LengthOffset(0)), UsdtEventLayout.InternedLength)
            .StoreImm(MemorySize.HalfWord, scratch, Field(layout.LengthOffset(1)), UsdtEventLayout.InternedLength)
            .Jump(labels["done"])
            .Label(labels["miss"]);

        // Per string, the length of the compact ASCII str its bytes belong to, or -1.
        var eligible = code.Stack.Allocate(8, "compact ascii lengths");
        var header = code.Stack.Allocate(StringInterning.HeaderSize, "str header");
        for (var j = 0; j < 2; j++)
        {
            var scope = code.Scope("ascii");
            string not = scope["not"], next = scope["next"];
            code.Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, header)
                .Mov64(Register.R2, StringInterning.HeaderSize)
                .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, j == 0 ? first : second)
                .Add64(Register.R3, pairs.HeaderOffset)
                .Call(HelperFunction.ProbeReadUser)
                .JumpIf(JumpCondition.NotEqual, Register.R0, 0, not)
                .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, (short)(header + 16))
                .And64(Register.R1, (int)pairs.CompactAsciiBits)
                .JumpIf(JumpCondition.NotEqual, Register.R1, (int)pairs.CompactAsciiBits, not)
                .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, header)
                .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, not)
                .StoreMem(MemorySize.Word, Register.FramePointer, (short)(eligible + 4 * j), Register.R1)
                .Jump(next)
                .Label(not)
                .StoreImm(MemorySize.Word, Register.FramePointer, (short)(eligible + 4 * j), -1)
                .Label(next);
        }
        for (var j = 0; j < 2; j++)
        {
            code.StoreImm(MemorySize.DoubleWord, scratch, fingerprints[j], 0);
            EmitStringCopy(code, layout, j, scratch, stringBytes);
        }

        BytesFingerprint.EmitForCopiedPair(code, layout, scratch, eligible, stringBytes);
        // The bytes the record carries, back from its two lengths (each at most MaxStringLength: the copies cut there).
        for (var j = 0; j < 2; j++)
        {
            var within = code.Scope("length")["within"];
            code.LoadMem(MemorySize.HalfWord, Register.R1, scratch, Field(layout.LengthOffset(j)))
                .JumpIf(JumpCondition.LessOrEqual, Register.R1, UsdtEventLayout.MaxStringLength, within)
                .Mov64(Register.R1, UsdtEventLayout.MaxStringLength)
                .Label(within)
                .Add64(stringBytes, Register.R1);
        }
        pairs.EmitRemember(code, pidTgid, scratch, first, second, fingerprints, EventProgramParts.PairWorkOffset);
        code.Label(labels["done"]);
    }

    private static void EmitEachString(InstructionBuilder code, UsdtEventLayout layout, Register scratch, Register pidTgid, Register stringBytes)
    {
        for (var j = 0; j < layout.StringArguments.Length; j++)
        {
            if (layout.Interning is null)
            {
                EmitStringCopy(code, layout, j, scratch, stringBytes);
                continue;
            }
            var labels = code.Scope("intern");
            EmitInternCheck(code, layout, j, scratch, pidTgid, copy: labels["send"], skip: labels["sent"]);
            EmitStringCopy(code, layout, j, scratch, stringBytes);
            code.Label(labels["sent"]);
        }
    }

    /// <summary>
    /// For an interned layout: reads the str object's header in front of string <paramref name="index"/>;
    /// if it is a compact ASCII str with a computed hash, records the hash as the fingerprint and looks
    /// (tgid, length, address, hash) up among the strings already sent. Found: the length is set to
    /// <see cref="UsdtEventLayout.InternedLength"/> and the copy is skipped (jump to <paramref name="skip"/>);
    /// otherwise the key is remembered and the string is copied (<paramref name="copy"/>, which must label
    /// the copy code that follows).
    /// </summary>
    private static void EmitInternCheck(InstructionBuilder code, UsdtEventLayout layout, int index, Register scratch, Register pidTgid, string copy, string skip)
    {
        var header = code.Stack.Allocate(StringInterning.HeaderSize, "str header");
        var key = code.Stack.Allocate(StringInterning.KeySize, "sent key");
        var value = code.Stack.Allocate(8, "sent value");
        var interning = layout.Interning!;
        var argument = layout.StringArguments[index];
        var insert = code.Scope("remember")["insert"];
        code.StoreImm(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(index)), 0)
            .Mov64(Register.R1, Register.FramePointer).Add64(Register.R1, header)
            .Mov64(Register.R2, StringInterning.HeaderSize)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .Add64(Register.R3, interning.HeaderOffset)
            .Call(HelperFunction.ProbeReadUser)
            .JumpIf(JumpCondition.NotEqual, Register.R0, 0, copy)
            .LoadMem(MemorySize.Word, Register.R1, Register.FramePointer, (short)(header + 16))
            .And64(Register.R1, (int)interning.CompactAsciiBits)
            .JumpIf(JumpCondition.NotEqual, Register.R1, (int)interning.CompactAsciiBits, copy)
            .LoadMem(MemorySize.DoubleWord, Register.R1, Register.FramePointer, header)
            .JumpIf(JumpCondition.Greater, Register.R1, UsdtEventLayout.MaxStringLength, copy)
            .LoadMem(MemorySize.DoubleWord, Register.R2, Register.FramePointer, (short)(header + 8))
            .JumpIf(JumpCondition.Equal, Register.R2, -1, copy) // hash never computed
            .JumpIf(JumpCondition.Equal, Register.R2, 0, copy)  // 0 means "no fingerprint" in the record
            .StoreMem(MemorySize.DoubleWord, scratch, Field(layout.FingerprintOffset(index)), Register.R2)
            .Mov64(Register.R3, pidTgid).Rsh64(Register.R3, 32)
            .StoreMem(MemorySize.Word, Register.FramePointer, key, Register.R3)
            .StoreMem(MemorySize.Word, Register.FramePointer, (short)(key + 4), Register.R1)
            .LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(argument)))
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(key + 8), Register.R3)
            .StoreMem(MemorySize.DoubleWord, Register.FramePointer, (short)(key + 16), Register.R2);
        MapLookup.Emit(code, SentStringsMap, key, insert)
            .StoreImm(MemorySize.HalfWord, scratch, Field(layout.LengthOffset(index)), UsdtEventLayout.InternedLength)
            .Jump(skip)
            .Label(insert)
            .StoreImm(MemorySize.DoubleWord, Register.FramePointer, value, 1)
            .LoadMap(Register.R1, SentStringsMap)
            .Mov64(Register.R2, Register.FramePointer).Add64(Register.R2, key)
            .Mov64(Register.R3, Register.FramePointer).Add64(Register.R3, value)
            .Mov64(Register.R4, 0)
            .Call(HelperFunction.MapUpdateElem)
            .Label(copy);
    }

    /// <summary>Appends string <paramref name="index"/> after the previous ones, whole up to MaxStringLength bytes.</summary>
    private static void EmitStringCopy(InstructionBuilder code, UsdtEventLayout layout, int index, Register scratch, Register stringBytes)
    {
        code.LoadMem(MemorySize.DoubleWord, Register.R3, scratch, Field(UsdtEventLayout.ValueOffset(layout.StringArguments[index])));
        // Up to two bytes more than is kept, so a string of exactly MaxStringLength bytes (read back as
        // MaxStringLength + 1 with its NUL) is not mistaken for a longer one.
        UserStringCopy.Emit(code, scratch, RecordOffset + layout.StringsOffset, stringBytes,
            keep: UsdtEventLayout.MaxStringLength, readSize: UsdtEventLayout.MaxStringLength + 2,
            new StringFields(Field(layout.LengthOffset(index)), MemorySize.HalfWord, Field(UsdtEventLayout.TruncatedOffset), index));
    }

    private static short Field(int recordOffset) => EventProgramParts.Field(recordOffset);
}
