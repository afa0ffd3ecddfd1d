using System.Text;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>One event, read in place from the ring buffer; valid only inside the record handler.</summary>
public readonly ref struct ProbeEvent
{
    private readonly UsdtEvent _raw;

    private readonly SentStrings? _sent;

    public ProbeEvent(ReadOnlySpan<byte> record, AttachedProbe probe, SentStrings? sent = null)
    {
        _raw = new UsdtEvent(record, probe.Layout);
        Probe = probe;
        _sent = sent;
    }

    public AttachedProbe Probe { get; }
    public string Name => Probe.Probe.Name;
    public ulong Timestamp => _raw.Timestamp;
    public int Pid => _raw.Tgid;
    public int Tid => _raw.Tid;

    /// <summary>Integer value of argument <paramref name="index"/> (pointers for string arguments).</summary>
    public long Value(int index) => _raw.Value(index);

    /// <summary>
    /// A function event that names its code object: its line is the code object's first line (always from
    /// _PyEval_EvalFrameDefault; from USDT where flow asked the kernel to read the frame and it could).
    /// </summary>
    public bool KeyedByCodeObject => Probe.Source != "USDT" || _raw.LineIsFirstLine;

    /// <summary>Raw bytes of argument <paramref name="index"/>, which must be a string argument.</summary>
    public ReadOnlySpan<byte> StringBytes(int index) => StringBytes(index, out _);

    /// <summary>Raw bytes of string argument <paramref name="index"/>, and whether the kernel cut it (one lookup for both).</summary>
    public ReadOnlySpan<byte> StringBytes(int index, out bool truncated)
    {
        var slot = StringSlot(index);
        if (!_raw.IsInterned(slot))
        {
            truncated = _raw.IsTruncated(slot);
            return _raw.StringBytes(slot);
        }
        return _sent!.Resolve(Pid, (ulong)Value(index), _raw.Fingerprint(slot), out truncated);
    }

    public bool IsTruncated(int index)
    {
        StringBytes(index, out var truncated);
        return truncated;
    }

    /// <summary>Hands strings sent with their fingerprint to the cache, so later records may omit them.</summary>
    public void RememberSentStrings()
    {
        if (_sent is null) return;
        var strings = Probe.Layout.StringArguments;
        for (var slot = 0; slot < strings.Length; slot++)
        {
            if (_raw.IsInterned(slot)) continue;
            var hash = _raw.Fingerprint(slot);
            if (hash != 0) _sent.Remember(Pid, (ulong)Value(strings[slot]), hash, _raw.StringBytes(slot), _raw.IsTruncated(slot));
        }
    }

    /// <summary>The string decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string String(int index) => Encoding.UTF8.GetString(StringBytes(index));

    private int StringSlot(int argument)
    {
        var slot = Probe.Layout.StringSlotOf(argument);
        return slot >= 0 ? slot : throw new ArgumentException($"argument {argument} of {Name} is not a string");
    }
}
