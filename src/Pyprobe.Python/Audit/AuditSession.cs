using System.Text;
using Pyprobe.Python.Sessions;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Audit;

/// <summary>How the audit arguments of one target are decoded, or why they are not.</summary>
public sealed record AuditTarget(TraceTarget Target, PyObjectLayout? Layout, string? NoDecodeReason)
{
    public bool Decodes => Layout is not null && NoDecodeReason is null;
}

/// <summary>
/// The audit probe attached to one or more Python binaries with the argument-decoding program
/// (<see cref="AuditProgram"/>), one program per site (the load bias is computed from the site's address).
/// </summary>
public sealed class AuditSession : IEventSession
{
    private readonly SessionCore _core;
    private readonly CpuScratchMap _scratch;
    private readonly RecordHandler _onRecord;
    private Action<AuditEvent>? _handler;

    private AuditSession(SessionCore core, CpuScratchMap scratch)
    {
        _core = core;
        _scratch = scratch;
        _onRecord = record => _handler!(Decode(record));
    }

    public UprobeAttachMode AttachMode => _core.AttachMode;
    public string AttachModeName => AttachModeNames.Of(AttachMode);
    public IRecordReader Reader => _core.Reader!;

    public ulong RingPendingBytes => Reader.PendingBytes;

    public ulong RingBytes => Reader.Size;
    public IReadOnlyList<AuditTarget> Targets { get; private set; } = [];
    public ulong Hits => _scratch.SumCounter(AuditProgram.HitsCounterOffset);
    public ulong Lost => _scratch.SumCounter(AuditProgram.LostCounterOffset);

    public static AuditSession Attach(IReadOnlyList<TraceTarget> targets, TraceSessionOptions? options = null)
    {
        options ??= new TraceSessionOptions();
        if (targets.Count == 0) throw new ArgumentException("nothing to attach");
        var core = SessionCore.Create(options.AttachMode, needsCookies: true);
        AuditSession session;
        BpfMap ring;
        try
        {
            ring = core.OpenRing("pyprobe_audit", options.RingBufferBytes, wakeupBytes: options.WakeupBytes);
            session = new AuditSession(core, CpuScratchMap.Make("pyprobe_ascratch", EventProgramParts.Scratch, AuditProgram.ScratchValueSize, core.AddMap));
        }
        catch
        {
            core.Dispose();
            throw;
        }
        try
        {
            var pidFilter = core.PidFilter("pyprobe_apids", targets);
            var maps = new AuditMaps(ring.Fd.Value, session._scratch.Map.Fd.Value, pidFilter?.Fd.Value, options.Tids, options.WakeupBytes);
            var attached = new List<AuditTarget>();
            foreach (var target in targets)
            {
                var probe = target.Binary.FindProbe(PythonProbeCatalog.Provider, "audit");
                if (probe is null) continue;
                var layout = CPythonFacts.For(target.Version)?.Objects;
                string? reason = null;
                AuditTypeSymbols? symbols = null;
                if (layout is null)
                    reason = target.Version is null ? "its CPython version is unknown" : $"pyprobe does not know the object layout of CPython {target.Version}";
                else if ((symbols = AuditTypeSymbols.Find(target.Binary, out var missing)) is null)
                    reason = $"{target.DisplayPath} does not export {missing}";
                var cookie = (ulong)attached.Count;
                attached.Add(new AuditTarget(target, reason is null ? layout : null, reason));
                foreach (var site in probe.Sites)
                {
                    var code = AuditProgram.Generate(site.Arguments, site.Address, maps, reason is null ? layout : null, symbols, target.Binary.ResolveSymbolAddress);
                    using var program = core.Load("py_audit", code.Bytecode);
                    core.Attach(program, target, [new UprobeSite(site.FileOffset, site.SemaphoreFileOffset, cookie)]);
                }
            }
            if (attached.Count == 0) throw new UsdtException("none of the targets has the audit probe");
            session.Targets = attached;
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }


    /// <summary>Decodes a record handed out by <see cref="Reader"/> into an owned event.</summary>
    public AuditEvent Decode(ReadOnlySpan<byte> record)
    {
        var cookie = I32(record, AuditLayout.CookieOffset);
        var target = cookie >= 0 && cookie < Targets.Count ? Targets[cookie] : null;
        var nameLength = Math.Clamp(I32(record, AuditLayout.EventLengthOffset), 0, AuditLayout.EventCapacity - 1);
        var name = Encoding.UTF8.GetString(record.Slice(AuditLayout.EventOffset, nameLength));
        var size = (long)U64(record, AuditLayout.TupleSizeOffset);
        var args = new List<AuditValue>();
        if (size >= 0)
            for (var i = 0; i < AuditLayout.TopSlots && i < size; i++)
                args.Add(DecodeSlot(record, i, true));
        return new AuditEvent(U64(record, AuditLayout.TimestampOffset), I32(record, AuditLayout.TgidOffset), I32(record, AuditLayout.TidOffset), name,
            (I32(record, AuditLayout.FlagsOffset) & 1) != 0, size, args, target);
    }

    private static ulong U64(ReadOnlySpan<byte> record, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(record[offset..]);
    private static int I32(ReadOnlySpan<byte> record, int offset) => BinaryPrimitives.ReadInt32LittleEndian(record[offset..]);

    private static AuditValue DecodeSlot(ReadOnlySpan<byte> record, int slot, bool top)
    {
        var at = AuditLayout.SlotOffset(slot);
        var kind = (AuditValueKind)record[at + AuditLayout.SlotKindOffset];
        var flags = record[at + AuditLayout.SlotFlagsOffset];
        var length = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(record[(at + AuditLayout.SlotLengthOffset)..]), AuditLayout.Capacity(slot));
        var value = BinaryPrimitives.ReadInt64LittleEndian(record[(at + AuditLayout.SlotValueOffset)..]);
        var data = record.Slice(at + AuditLayout.SlotDataOffset, length).ToArray();
        List<AuditValue>? items = null;
        if (top && kind is AuditValueKind.Tuple or AuditValueKind.List)
        {
            items = [];
            for (var j = 0; j < AuditLayout.NestedPerSlot && j < value; j++)
                items.Add(DecodeSlot(record, AuditLayout.NestedSlot(slot, j), false));
        }
        return new AuditValue(kind, value, data, (flags & 1) != 0, (flags >> 1) & 7, items);
    }

    /// <summary>Hands every event waiting in the ring to <paramref name="handler"/> (one pass); returns how many.</summary>
    public int Drain(Action<AuditEvent> handler)
    {
        _handler = handler;
        return Reader.Drain(_onRecord);
    }

    public void Wait(int milliseconds) => Reader.WaitForData(milliseconds);

    public void Wake() => Reader.Interrupt();

    public void Detach() => _core.Detach();

    public void Dispose() => _core.Dispose();
}

/// <summary>One audit event: its name and the decoded arguments (at most <see cref="AuditLayout.TopSlots"/>).</summary>
/// <param name="ArgumentCount">The tuple's size; -1 when the arguments were not read.</param>
public sealed record AuditEvent(ulong Timestamp, int Pid, int Tid, string Name, bool NameTruncated, long ArgumentCount, IReadOnlyList<AuditValue> Arguments, AuditTarget? Target);

/// <summary>One decoded argument.</summary>
/// <param name="Value">int value; str length in characters; bytes/tuple/list size; float bits; bool 0/1; big int signed digit count.</param>
/// <param name="Data">str code units, bytes content, or the type name of another object (possibly cut).</param>
/// <param name="UnicodeKind">For str: bytes per code unit (1, 2 or 4); ASCII strings are 1.</param>
/// <param name="Items">The first items of a tuple or list.</param>
public sealed record AuditValue(AuditValueKind Kind, long Value, byte[] Data, bool Truncated, int UnicodeKind, IReadOnlyList<AuditValue>? Items)
{
    public string TypeName => Kind switch
    {
        AuditValueKind.None => "None",
        AuditValueKind.Int or AuditValueKind.BigInt => "int",
        AuditValueKind.Str or AuditValueKind.StrUndecodable => "str",
        AuditValueKind.Bytes => "bytes",
        AuditValueKind.Tuple => "tuple",
        AuditValueKind.List => "list",
        AuditValueKind.Float => "float",
        AuditValueKind.Bool => "bool",
        AuditValueKind.Other => Encoding.UTF8.GetString(Data),
        AuditValueKind.Unreadable => "unreadable",
        _ => "absent",
    };

    /// <summary>The str's text (what was copied), or null when it could not be decoded.</summary>
    public string? Text => Kind != AuditValueKind.Str ? null : UnicodeKind switch
    {
        1 => Encoding.Latin1.GetString(Data),
        2 => Encoding.Unicode.GetString(Data, 0, Data.Length & ~1),
        4 => Encoding.UTF32.GetString(Data, 0, Data.Length & ~3),
        _ => null,
    };

    /// <summary>The decoded value is all of the object (nothing cut, no items left out).</summary>
    public bool Complete => !Truncated && Kind switch
    {
        AuditValueKind.Tuple or AuditValueKind.List => Items is not null && Items.Count == Value && Items.All(i => i.Complete),
        AuditValueKind.Str => Text is not null,
        AuditValueKind.BigInt or AuditValueKind.StrUndecodable or AuditValueKind.Unreadable or AuditValueKind.Other or AuditValueKind.Absent => false,
        _ => true,
    };
}
