namespace Pyprobe.Usdt.CodeGen;

/// <summary>
/// How a string's bytes are held in a record: as the probe gave them (UTF-8 for CPython's probes), or as a Python str
/// that is not ASCII keeps its characters (PEP 393: one, two or four bytes each, little-endian), which the kernel copies
/// unchanged and the reader makes UTF-8 (<see cref="StringTranscoder"/>).
/// </summary>
public enum StringEncoding : byte
{
    Utf8 = 0,
    Latin1 = 1,
    Utf16 = 2,
    Utf32 = 3,
}
