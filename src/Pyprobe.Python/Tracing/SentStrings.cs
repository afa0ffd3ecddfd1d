namespace Pyprobe.Python.Tracing;

/// <summary>
/// User-space half of string interning (see <see cref="Usdt.CodeGen.StringInterning"/>): the bytes of
/// every string the kernel sent once, by (process, address, hash). A record that arrives before the
/// one carrying its string (two CPUs racing), or after that one was lost to a full ring, is resolved
/// by reading the string from the process itself; if even that fails the name shows as "?".
/// </summary>
public sealed class SentStrings
{
    private static readonly byte[] Unknown = "?"u8.ToArray();
    private readonly Dictionary<(int Pid, ulong Address, ulong Hash), Entry> _strings = [];
    private readonly bool _readProcesses;

    /// <param name="readProcesses">
    /// Read a string that was never sent from its process (live sessions). False for a capture converted later: the
    /// process is gone or its pid is someone else's, so such a string shows as "?".
    /// </param>
    public SentStrings(bool readProcesses = true) => _readProcesses = readProcesses;

    /// <param name="FromProcess">Read back from the process, not sent by the kernel: the bytes a record carries replace it.</param>
    private sealed record Entry(byte[] Bytes, bool Truncated, bool Trusted, bool FromProcess = false);

    /// <summary>Strings resolved from earlier records: each one a string the kernel did not copy.</summary>
    public long Reused { get; private set; }

    /// <summary>Strings read back from the process because the record carrying them had not arrived.</summary>
    public long ReadFromProcess { get; private set; }

    /// <summary>Strings that could not be resolved at all.</summary>
    public long Unresolved { get; private set; }

    /// <summary>Records a string the kernel sent with its fingerprint (first sight in the kernel).</summary>
    public void Remember(int pid, ulong address, ulong hash, ReadOnlySpan<byte> bytes, bool truncated)
    {
        // The newest bytes a record carried win: a string read back from the process (its record came second) may have
        // been freed and overwritten by then. The same bytes again change nothing (and allocate nothing).
        if (_strings.TryGetValue((pid, address, hash), out var known) && !known.FromProcess && known.Truncated == truncated && bytes.SequenceEqual(known.Bytes)) return;
        // A compact ASCII str holds only ASCII: anything else means the header in front of these bytes
        // was not a str header, so the fingerprint says nothing and the process is asked every time.
        var trusted = !bytes.ContainsAnyExceptInRange((byte)0, (byte)0x7f);
        _strings[(pid, address, hash)] = new Entry(bytes.ToArray(), truncated, trusted);
    }

    /// <summary>The bytes of a string the record only names.</summary>
    public ReadOnlySpan<byte> Resolve(int pid, ulong address, ulong hash, out bool truncated)
    {
        if (_strings.TryGetValue((pid, address, hash), out var entry) && entry.Trusted)
        {
            Reused++;
            truncated = entry.Truncated;
            return entry.Bytes;
        }
        truncated = false;
        var read = _readProcesses ? ReadCString(pid, address, out truncated) : null;
        if (read is null)
        {
            Unresolved++;
            truncated = false;
            return Unknown;
        }
        ReadFromProcess++;
        if (entry is null) _strings[(pid, address, hash)] = new Entry(read, truncated, Trusted: true, FromProcess: true);
        return read;
    }

    private static byte[]? ReadCString(int pid, ulong address, out bool truncated)
    {
        truncated = false;
        try
        {
            using var memory = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            memory.Seek((long)address, SeekOrigin.Begin);
            var buffer = new byte[Usdt.CodeGen.UsdtEventLayout.MaxStringLength + 1];
            var total = 0;
            while (total < buffer.Length)
            {
                var n = memory.Read(buffer, total, Math.Min(256, buffer.Length - total));
                if (n <= 0) break;
                var nul = Array.IndexOf(buffer, (byte)0, total, n);
                if (nul >= 0) return buffer[..nul];
                total += n;
            }
            truncated = total > Usdt.CodeGen.UsdtEventLayout.MaxStringLength;
            return buffer[..Math.Min(total, Usdt.CodeGen.UsdtEventLayout.MaxStringLength)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}
