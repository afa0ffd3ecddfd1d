namespace Pyprobe.Bpf.Tests.Asm;

/// <summary>Hex formatting so byte mismatches show up readably in assertion messages.</summary>
internal static class Bytes
{
    public static string Hex(ReadOnlySpan<byte> bytes) =>
        string.Join(' ', bytes.ToArray().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Parses "b7 00 ... | 00 ..." (spaces and the slot separator '|' are ignored).</summary>
    public static byte[] Parse(string hex) =>
        Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal).Replace("|", string.Empty, StringComparison.Ordinal));
}
