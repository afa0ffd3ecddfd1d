namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// Sending a string once per process instead of with every event. Copying the file and function
/// names costs more than the rest of an event (two bpf_probe_read_user_str calls, about 400 ns of the
/// ~500 ns pyprobe adds to a CPython 3.9 call). A string is recognised by its address plus a
/// fingerprint read from the object that holds it: for CPython's compact ASCII str objects the bytes
/// follow a header with the length, the hash and the state bits, so
/// <c>(address, length, hash)</c> names one immutable string; a freed and reused address holds a
/// different string with a different hash. Strings that are not compact ASCII, or whose hash was never
/// computed, are sent with every event as before.
/// </summary>
/// <param name="HeaderOffset">Where the length field lies relative to the string's bytes (negative).</param>
/// <param name="MapFd">LRU hash of strings already sent: key <see cref="KeySize"/> bytes, value 1 byte.</param>
/// <param name="CompactAsciiBits">The state bits that mark a compact ASCII str (given by the runtime model).</param>
public sealed record StringInterning(int HeaderOffset, int MapFd, uint CompactAsciiBits)
{
    /// <summary>u32 tgid, u32 length, u64 address, u64 hash.</summary>
    public const int KeySize = 24;

    /// <summary>Header bytes read: length (8), hash (8), state (4 of 8).</summary>
    public const int HeaderSize = 24;
}
