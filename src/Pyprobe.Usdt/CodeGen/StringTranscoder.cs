using System.Runtime.InteropServices;
using System.Text;

namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// Makes the bytes of a string held in another <see cref="StringEncoding"/> UTF-8. A traced program's names are few and
/// come back with every call, so each distinct string is transcoded once per thread and kept: the bytes returned stay
/// valid (the cache is cleared, not reused, when it grows past a bound), and a repeated name costs a lookup.
/// </summary>
public static class StringTranscoder
{
    /// <summary>Distinct strings kept per thread and encoding before the cache starts over.</summary>
    private const int MaxCached = 4096;

    [ThreadStatic] private static Dictionary<byte[], byte[]>[]? _caches;

    public static ReadOnlySpan<byte> ToUtf8(StringEncoding encoding, ReadOnlySpan<byte> raw)
    {
        if (encoding == StringEncoding.Utf8) return raw;
        var caches = _caches ??= [.. Enumerable.Range(0, 4).Select(_ => new Dictionary<byte[], byte[]>(BytesComparer.Instance))];
        var cache = caches[(int)encoding];
        var lookup = cache.GetAlternateLookup<ReadOnlySpan<byte>>();
        if (lookup.TryGetValue(raw, out var known)) return known;
        if (cache.Count >= MaxCached) cache.Clear();
        var utf8 = Transcode(encoding, raw);
        cache[raw.ToArray()] = utf8;
        return utf8;
    }

    /// <summary>The characters of <paramref name="raw"/> as UTF-8; a trailing partial character (a cut string's) is dropped.</summary>
    public static byte[] Transcode(StringEncoding encoding, ReadOnlySpan<byte> raw)
    {
        string text = encoding switch
        {
            StringEncoding.Latin1 => Encoding.Latin1.GetString(raw),
            // CPython's UCS-2 holds no surrogate pairs; a lone surrogate becomes U+FFFD, as Python's own "replace" would.
            StringEncoding.Utf16 => new string(MemoryMarshal.Cast<byte, char>(raw[..(raw.Length & ~1)])),
            StringEncoding.Utf32 => Encoding.UTF32.GetString(raw[..(raw.Length & ~3)]),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding)),
        };
        return Encoding.UTF8.GetBytes(text);
    }

    private sealed class BytesComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly BytesComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] bytes) => GetHashCode((ReadOnlySpan<byte>)bytes);
        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }
        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
