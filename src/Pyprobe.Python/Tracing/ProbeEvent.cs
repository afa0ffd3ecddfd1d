using System.Text;
using Pyprobe.Python.Probes;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>One event, read in place from the ring buffer; valid only inside the record handler.</summary>
public readonly ref struct ProbeEvent
{
    private readonly UsdtEvent _raw;

    public ProbeEvent(ReadOnlySpan<byte> record, AttachedProbe probe)
    {
        _raw = new UsdtEvent(record, probe.Layout);
        Probe = probe;
    }

    public AttachedProbe Probe { get; }
    public string Name => Probe.Probe.Name;
    public ulong Timestamp => _raw.Timestamp;
    public int Pid => _raw.Tgid;
    public int Tid => _raw.Tid;

    /// <summary>Integer value of argument <paramref name="index"/> (pointers for string arguments).</summary>
    public long Value(int index) => _raw.Value(index);

    /// <summary>Raw bytes of argument <paramref name="index"/>, which must be a string argument.</summary>
    public ReadOnlySpan<byte> StringBytes(int index) => _raw.StringBytes(StringSlot(index));

    public bool IsTruncated(int index) => _raw.IsTruncated(StringSlot(index));

    /// <summary>The string decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string String(int index) => Encoding.UTF8.GetString(StringBytes(index));

    private int StringSlot(int argument)
    {
        var slot = -1;
        var strings = Probe.Layout.StringArguments;
        for (var i = 0; i < strings.Count; i++)
            if (strings[i] == argument) slot = i;
        return slot >= 0 ? slot : throw new ArgumentException($"argument {argument} of {Name} is not a string");
    }
}
