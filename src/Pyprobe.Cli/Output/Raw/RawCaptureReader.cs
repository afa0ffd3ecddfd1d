using System.Buffers.Binary;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Cli.Output.Raw;

/// <summary>
/// Reads a raw capture back: its header, then every record decoded in place from large reads, as the live run's
/// ring reader would have handed it out (same <see cref="ProbeEvent"/>, so the same formatters write the same bytes).
/// </summary>
internal sealed class RawCaptureReader : IDisposable
{
    private const int BlockSize = 8 << 20;

    private readonly FileStream _file;
    private readonly string _path;
    private readonly AttachedProbe?[] _probes;
    private readonly long _headerEnd;

    private RawCaptureReader(FileStream file, string path, RawCaptureHeader header)
    {
        _file = file;
        _path = path;
        Header = header;
        _headerEnd = file.Position;
        _probes = new AttachedProbe?[header.Probes.Count == 0 ? 0 : (int)header.Probes.Max(p => p.Id) + 1];
        foreach (var probe in header.Probes) _probes[probe.Id] = probe;
    }

    public RawCaptureHeader Header { get; }

    public static RawCaptureReader Open(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new CliException($"cannot read {path}: {e.Message}");
        }
        try
        {
            return new RawCaptureReader(file, path, RawCaptureHeader.Read(file, path));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Hands every record to <paramref name="handler"/> in capture order; returns how many there were. Records may name
    /// strings that another record carries (eval-frame names from the code-object memo, see CodeObjectMemo), possibly a
    /// later one (two CPUs racing): a first pass learns every string carried, the second decodes.
    /// </summary>
    public long ReadAll(ProbeEventHandler handler)
    {
        var sent = new SentStrings(readProcesses: false);
        ReadRecords(sent, (in ProbeEvent e) => e.RememberSentStrings(), learning: true);
        _file.Seek(_headerEnd, SeekOrigin.Begin);
        return ReadRecords(sent, handler, learning: false);
    }

    /// <param name="learning">The first pass: a damaged or cut capture ends it quietly (the second pass converts what is whole, then says why it stopped).</param>
    private long ReadRecords(SentStrings sent, ProbeEventHandler handler, bool learning)
    {
        var block = new byte[BlockSize];
        var filled = 0;
        long records = 0;
        while (true)
        {
            var read = _file.Read(block, filled, block.Length - filled);
            filled += read;
            var at = 0;
            while (filled - at >= RingBufferReader.FramedHeaderSize)
            {
                var length = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(at));
                var payload = (int)(length & ~RingBufferReader.FramedDiscardBit);
                var framed = (RingBufferReader.FramedHeaderSize + payload + 7) & ~7;
                if (payload < 0 || payload > 1 << 24)
                {
                    if (learning) return records;
                    throw new CliException($"{_path}: damaged raw capture (a record of {length} bytes at offset {_file.Position - filled + at})");
                }
                if (framed > filled - at) break;
                if ((length & RingBufferReader.FramedDiscardBit) == 0)
                {
                    var record = block.AsSpan(at + RingBufferReader.FramedHeaderSize, payload);
                    var probe = learning ? TryProbeOf(record) : ProbeOf(record);
                    if (probe is null) return records;
                    var e = new ProbeEvent(record, probe, sent);
                    handler(in e);
                    records++;
                }
                at += framed;
            }
            // What is left is the start of a record that continues in the next read.
            filled -= at;
            if (filled > 0)
            {
                Buffer.BlockCopy(block, at, block, 0, filled);
                if (filled == block.Length) Array.Resize(ref block, block.Length * 2);
            }
            if (read == 0)
            {
                if (filled > 0 && !learning) throw new CliException($"{_path} ends inside a record ({filled} bytes after the last whole one): the capture was cut short; {records} events were converted");
                return records;
            }
        }
    }

    private AttachedProbe? TryProbeOf(ReadOnlySpan<byte> record)
    {
        if (record.Length < UsdtEventLayout.ValuesOffset) return null;
        var id = BinaryPrimitives.ReadUInt32LittleEndian(record[UsdtEventLayout.ProbeIdOffset..]);
        return id < _probes.Length ? _probes[id] : null;
    }

    private AttachedProbe ProbeOf(ReadOnlySpan<byte> record)
    {
        if (record.Length < UsdtEventLayout.ValuesOffset) throw new CliException($"{_path}: damaged raw capture (a record of {record.Length} bytes)");
        var id = BinaryPrimitives.ReadUInt32LittleEndian(record[UsdtEventLayout.ProbeIdOffset..]);
        return id < _probes.Length && _probes[id] is { } probe ? probe : throw new CliException($"{_path}: a record of probe id {id}, which the header does not list");
    }

    public void Dispose() => _file.Dispose();
}
