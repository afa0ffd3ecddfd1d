using System.Text;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Cli.Output.Raw;

/// <summary>
/// The start of a raw capture (<c>trace --format raw -o FILE</c>): what <c>pyprobe convert</c> needs to turn the records
/// that follow into exactly the lines the live run would have written. All integers little-endian; strings are
/// .NET BinaryWriter strings (7-bit encoded length, UTF-8).
/// <code>
///  0  8 bytes  magic "PYPRBRAW"
///  8  u32      format version (1)
/// 12  u32      header length: the records start here (a multiple of 8)
/// 16  i64      Unix time minus CLOCK_MONOTONIC, ns, when the capture started (the clock of the text time column)
/// 24  i64      the local time zone's offset from UTC, ns
/// 32  u8       several processes traced (text shows [pid/tid])
/// 33  u8       the trace's --time (0 seconds, 1 micros, 2 none): convert's default
/// 34  string   where the probes were attached (for people)
///     u32      probe count, then per probe:
///       u32 id (the id its records carry), string name, string source,
///       u8 argument count, per argument: string name, string C type, u8 kind (ProbeArgumentKind),
///       u8 string-argument count, per string argument: u8 argument index (the order of their bytes in a record)
///     zero padding to a multiple of 8
/// </code>
/// Then the ring buffer's records exactly as the kernel framed them (see <see cref="Pyprobe.Bpf.RingBuffer.RingBufferReader.DrainFramed"/>):
/// u32 length (bit 30 set: discarded, skip it), u32 unused, the record (<see cref="UsdtEventLayout"/>), padding to 8.
/// </summary>
internal sealed record RawCaptureHeader(long MonotonicToUnixNs, long LocalOffsetNs, bool ManyProcesses, TimeFormat Time, string Where, IReadOnlyList<AttachedProbe> Probes)
{
    public static ReadOnlySpan<byte> Magic => "PYPRBRAW"u8;
    public const uint Version = 1;

    public byte[] Encode()
    {
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write(0u); // header length, filled in below
            writer.Write(MonotonicToUnixNs);
            writer.Write(LocalOffsetNs);
            writer.Write(ManyProcesses);
            writer.Write((byte)Time);
            writer.Write(Where);
            writer.Write(Probes.Count);
            foreach (var probe in Probes)
            {
                if (probe.Layout.Interning is not null) throw new CliException("a raw capture cannot hold interned strings (their bytes live in the traced process)");
                writer.Write(probe.Id);
                writer.Write(probe.Probe.Name);
                writer.Write(probe.Source);
                writer.Write((byte)probe.Probe.Arguments.Count);
                foreach (var argument in probe.Probe.Arguments)
                {
                    writer.Write(argument.Name);
                    writer.Write(argument.CType);
                    writer.Write((byte)argument.Kind);
                }
                writer.Write((byte)probe.Layout.StringArguments.Length);
                foreach (var index in probe.Layout.StringArguments) writer.Write((byte)index);
            }
            while (memory.Length % 8 != 0) writer.Write((byte)0);
        }
        var bytes = memory.ToArray();
        BitConverter.TryWriteBytes(bytes.AsSpan(12), (uint)bytes.Length);
        return bytes;
    }

    /// <summary>Reads the header at the start of <paramref name="stream"/>; leaves the stream at the first record.</summary>
    public static RawCaptureHeader Read(Stream stream, string path)
    {
        try
        {
            using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
            if (!reader.ReadBytes(8).AsSpan().SequenceEqual(Magic)) throw new CliException($"{path} is not a pyprobe raw capture (made by trace --format raw)");
            var version = reader.ReadUInt32();
            if (version != Version) throw new CliException($"{path} is a raw capture of format version {version}; this pyprobe reads version {Version}");
            var length = reader.ReadUInt32();
            var clockOffset = reader.ReadInt64();
            var localOffset = reader.ReadInt64();
            var many = reader.ReadBoolean();
            var time = (TimeFormat)reader.ReadByte();
            var where = reader.ReadString();
            var count = reader.ReadInt32();
            if (count is < 0 or > 1 << 16) throw new InvalidDataException("probe count");
            var probes = new List<AttachedProbe>(count);
            for (var p = 0; p < count; p++)
            {
                var id = reader.ReadUInt32();
                var name = reader.ReadString();
                var source = reader.ReadString();
                var arguments = new ProbeArgument[reader.ReadByte()];
                for (var i = 0; i < arguments.Length; i++) arguments[i] = new ProbeArgument(reader.ReadString(), reader.ReadString(), (ProbeArgumentKind)reader.ReadByte());
                var strings = new int[reader.ReadByte()];
                for (var j = 0; j < strings.Length; j++) strings[j] = reader.ReadByte();
                var description = PythonProbeCatalog.Find(name)?.Description ?? name;
                probes.Add(new AttachedProbe(id, new PythonProbe(name, description, arguments), null, new UsdtEventLayout(arguments.Length, strings), 0, source));
            }
            if (length < stream.Position || length % 8 != 0) throw new InvalidDataException("header length");
            stream.Position = length;
            return new RawCaptureHeader(clockOffset, localOffset, many, time, where, probes);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException or ArgumentException or FormatException or UsdtException)
        {
            throw new CliException($"{path}: damaged raw capture header ({e.Message})");
        }
    }
}
