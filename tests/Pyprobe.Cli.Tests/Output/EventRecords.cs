using System.Buffers.Binary;
using Pyprobe.Python.Probes;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Cli.Tests.Output;

/// <summary>
/// Event records byte for byte as the kernel program writes them (<see cref="UsdtEventLayout"/>), for the probes of the
/// catalog, so the formatters and the raw capture can be fed exactly the same events the ring would hand out.
/// </summary>
internal static class EventRecords
{
    public static AttachedProbe Probe(uint id, string name)
    {
        var probe = PythonProbeCatalog.Find(name) ?? throw new ArgumentException(name);
        var strings = probe.Arguments.Select((a, i) => (a, i)).Where(x => x.a.Kind == ProbeArgumentKind.CString).Select(x => x.i).ToList();
        return new AttachedProbe(id, probe, null, new UsdtEventLayout(probe.Arguments.Count, strings), 1);
    }

    /// <param name="values">every argument's value (a string's is its address)</param>
    /// <param name="strings">the bytes of each string argument, in order; longer than the limit means cut and marked</param>
    public static byte[] Record(AttachedProbe probe, ulong timestamp, int pid, int tid, long[] values, byte[][] strings)
    {
        var layout = probe.Layout;
        var kept = strings.Select(s => s.Length > UsdtEventLayout.MaxStringLength ? s[..UsdtEventLayout.MaxStringLength] : s).ToArray();
        var record = new byte[layout.StringsOffset + kept.Sum(s => s.Length)];
        BinaryPrimitives.WriteUInt64LittleEndian(record, timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(UsdtEventLayout.TgidOffset), pid);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(UsdtEventLayout.TidOffset), tid);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(UsdtEventLayout.ProbeIdOffset), probe.Id);
        var truncated = 0u;
        for (var j = 0; j < strings.Length; j++) if (strings[j].Length > UsdtEventLayout.MaxStringLength) truncated |= 1u << j;
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(UsdtEventLayout.TruncatedOffset), truncated);
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(UsdtEventLayout.ValueOffset(i)), values[i]);
        var at = layout.StringsOffset;
        for (var j = 0; j < kept.Length; j++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(layout.LengthOffset(j)), (ushort)kept[j].Length);
            kept[j].CopyTo(record, at);
            at += kept[j].Length;
        }
        return record;
    }

    /// <summary>Names that take every path of the formatters: plain ASCII, JSON's escaped ASCII, control bytes, UTF-8, invalid UTF-8, cut strings.</summary>
    public static readonly byte[][] OddNames =
    [
        "/usr/lib/python3.9/asyncio/base_events.py"u8.ToArray(),
        "leaf"u8.ToArray(),
        ""u8.ToArray(),
        "a\"b\\c&d'e+f<g>h`i"u8.ToArray(),
        "line\nbreak\ttab\u007f.py"u8.ToArray(),
        "café_ñandú_δ_€_😀.py"u8.ToArray(),
        [0x62, 0x61, 0x64, 0xff, 0xfe, 0x80, 0x6e, 0xe2, 0x82],
        [.. Enumerable.Repeat((byte)'D', 5000)],
        [.. Enumerable.Repeat((byte)0xe2, 1).Concat("€€€"u8.ToArray()).Concat(Enumerable.Repeat((byte)'x', 4100))],
        // about the length where the JSON formatter's check for bytes to escape changes method (32), a special last
        [.. Enumerable.Repeat((byte)'n', 30), (byte)'<'],
        [.. Enumerable.Repeat((byte)'n', 31), (byte)'<'],
        [.. Enumerable.Repeat((byte)'n', 32), (byte)'<'],
        [.. Enumerable.Repeat((byte)'n', 32)],
        // every ASCII byte alone in a short name
        .. Enumerable.Range(1, 127).Select(b => new byte[] { (byte)'a', (byte)b, (byte)'z' }),
    ];

    /// <summary>A mix of events of three probes over the odd names, two processes, threads other than the main one.</summary>
    public static List<byte[]> Mixed(AttachedProbe entry, AttachedProbe import, AttachedProbe audit, ulong start)
    {
        var records = new List<byte[]>();
        var ts = start;
        for (var i = 0; i < OddNames.Length; i++)
        {
            for (var k = 0; k < OddNames.Length; k++)
            {
                ts += 1_234_567 + (ulong)(i * 7919 + k * 104729);
                var pid = k % 3 == 0 ? 4242 : 77;
                var tid = k % 2 == 0 ? pid : pid + 1 + k;
                records.Add(Record(entry, ts, pid, tid, [0x7f0000001000 + i, 0x7f0000002000 + k, i * 100 + k - 5], [OddNames[i], OddNames[k]]));
            }
            records.Add(Record(import, ts + 11, 77, 77, [0x7f0000003000, i % 2], [OddNames[i]]));
            records.Add(Record(audit, ts + 13, 4242, 4243, [0x7f0000004000, 0x7f0000005000], [OddNames[i]]));
        }
        return records;
    }
}
