using System.Text;
using System.Text.RegularExpressions;
using Pyprobe.Usdt.Elf;
using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Versions;

/// <summary>
/// Finds the CPython version of an interpreter binary (python3.X or libpython3.X.so) or of a
/// running process, without executing it. Methods in order of reliability:
/// 1. _Py_DebugOffsets (3.13+): .PyRuntime starts with the cookie "xdebugpy" then u64 PY_VERSION_HEX
///    (cpython.md §3.1);
/// 2. the Py_Version symbol (3.11+): an exported const unsigned long holding PY_VERSION_HEX;
/// 3. the PY_VERSION literal ("3.9.2") whose address Py_GetVersion (every version's exported API) passes to its
///    snprintf: the function's few dozen bytes searched for the addresses they name, a few bytes read at each;
/// 4. a PY_VERSION literal anywhere in .rodata — best effort, must agree with the file name when that has one;
/// 5. the file name (major.minor only).
/// </summary>
public static partial class PythonVersionDetector
{
    private static ReadOnlySpan<byte> DebugCookie => "xdebugpy"u8;

    [GeneratedRegex(@"(?:^|/)(?:lib)?python(\d+)\.(\d+)[a-z]*(?:\.so[.\d]*|-dbg)?$")]
    private static partial Regex FileNameVersion();

    /// <summary>Detects the version of an ELF file; throws <see cref="UsdtException"/> if nothing works.</summary>
    /// <param name="nameHint">The name to use for the file-name method (e.g. the display path when <paramref name="path"/> is /proc/PID/map_files/…).</param>
    public static DetectedPythonVersion DetectFromFile(string path, string? nameHint = null)
    {
        var elf = ElfImage.Open(path);
        return Detect(elf, nameHint ?? path)
            ?? throw new UsdtException($"Cannot determine the Python version of {nameHint ?? path}: no .PyRuntime debug offsets, no Py_Version symbol, no version string and no version in the file name.");
    }

    /// <summary>Detects the version from an already opened ELF image; null if no method works.</summary>
    public static DetectedPythonVersion? Detect(ElfImage elf, string nameHint)
    {
        var fromName = FromFileName(nameHint);
        return FromDebugOffsets(elf)
            ?? FromPyVersionSymbol(elf)
            ?? FromGetVersionLiteral(elf)
            ?? FromRodataString(elf, fromName)
            ?? (fromName is null ? null : new DetectedPythonVersion(fromName, PythonVersionSource.FileName, elf.Path));
    }

    /// <summary>
    /// Detects the version of the interpreter running as <paramref name="pid"/>: from the mapped
    /// libpython if any, else the main executable or a python-named mapped file. Works for
    /// interpreters without USDT probes too.
    /// </summary>
    public static DetectedPythonVersion DetectFromProcess(int pid)
    {
        var (candidates, exe) = PythonProcessFiles.Locate(pid);
        foreach (var c in candidates)
        {
            ElfImage elf;
            try { elf = ElfImage.Open(c.OpenPath); }
            catch (UsdtException) { continue; }
            if (Detect(elf, c.DisplayPath) is { } v)
                return v with { Path = c.DisplayPath };
        }
        throw new NotAPythonProcessException(pid, exe);
    }

    internal static DetectedPythonVersion? FromDebugOffsets(ElfImage elf)
    {
        var section = elf.FindSection(".PyRuntime");
        if (section is null || !section.HasFileData || section.Size < 16) return null;
        var head = elf.ReadSection(section, 16);
        if (!head.AsSpan(0, 8).SequenceEqual(DebugCookie)) return null;
        ulong hex = BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(8));
        return PythonVersion.IsPlausibleHex(hex)
            ? new DetectedPythonVersion(PythonVersion.FromHex(hex), PythonVersionSource.DebugOffsets, elf.Path)
            : null;
    }

    internal static DetectedPythonVersion? FromPyVersionSymbol(ElfImage elf)
    {
        if (!elf.MayDefineSymbol("Py_Version") || elf.TryFindUniqueSymbol("Py_Version") is not { } sym) return null;
        byte[] bytes;
        try { bytes = elf.ReadVirtual(sym.Value, 4); }
        catch (UsdtException) { return null; }
        // unsigned long on LP64, but the value fits the low (first, little-endian) 32 bits.
        ulong hex = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        return PythonVersion.IsPlausibleHex(hex)
            ? new DetectedPythonVersion(PythonVersion.FromHex(hex), PythonVersionSource.PyVersionSymbol, elf.Path)
            : null;
    }

    /// <summary>
    /// Py_GetVersion formats "%.80s (%.80s) %.80s" from PY_VERSION, the build info and the compiler: its code holds
    /// the literal's address, as a <c>mov $address, %r32</c> immediate (a fixed-address executable) or a
    /// <c>lea disp(%rip), %r64</c> (position independent). The version is the one string among the addresses it names
    /// that reads as a CPython release. Scanning all of .rodata for it (megabytes, its pages faulted in) was ~2 ms of
    /// every attach to a 3.8–3.10.
    /// </summary>
    internal static DetectedPythonVersion? FromGetVersionLiteral(ElfImage elf)
    {
        const int longestBody = 256;
        if (!elf.MayDefineSymbol("Py_GetVersion") || elf.TryFindUniqueSymbol("Py_GetVersion") is not { } function) return null;
        if (function.Size is 0 or > longestBody) return null;
        var body = new byte[function.Size];
        if (elf.ReadVirtualInto(function.Value, body) != body.Length) return null;
        var found = new HashSet<PythonVersion>();
        foreach (var address in AddressesNamedBy(body, function.Value))
            if (ReleaseAt(elf, address) is { } version) found.Add(version);
        return found.Count == 1 ? new DetectedPythonVersion(found.First(), PythonVersionSource.GetVersionLiteral, elf.Path) : null;
    }

    /// <summary>
    /// The addresses x86-64 code at <paramref name="start"/> may name as a mov immediate or a RIP-relative lea, looked
    /// for at every byte rather than decoded (a disassembler's tables cost more to build than the whole search): a
    /// false match names some address that holds no version string, and is dropped by the caller.
    /// </summary>
    private static IEnumerable<ulong> AddressesNamedBy(byte[] code, ulong start)
    {
        for (var at = 0; at + 5 <= code.Length; at++)
        {
            // mov $imm32, %r32: B8+r id (41 B8+r for r8d-r15d); the immediate is the address itself.
            if (code[at] is >= 0xB8 and <= 0xBF)
                yield return BinaryPrimitives.ReadUInt32LittleEndian(code.AsSpan(at + 1));
            // lea disp32(%rip), %r64: REX.W (48/4C) 8D, ModRM with mod 00 and r/m 101; relative to the next instruction.
            if (at + 7 <= code.Length && code[at] is 0x48 or 0x4C && code[at + 1] == 0x8D && (code[at + 2] & 0xC7) == 0x05)
                yield return start + (ulong)(at + 7) + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(code.AsSpan(at + 3));
        }
    }

    /// <summary>The CPython release spelled by the NUL-terminated string at <paramref name="address"/> in initialised, non-executable data; null otherwise.</summary>
    private static PythonVersion? ReleaseAt(ElfImage elf, ulong address)
    {
        const int longestLiteral = 16; // "3.10.0rc2+" and its NUL fit
        if (elf.TryVirtualAddressToFileOffset(address, executable: false) is null) return null;
        // Most candidates are false matches, many of them in .bss: a read that reports how much file data there was,
        // not one that throws (an exception apiece was the most of this search).
        Span<byte> bytes = stackalloc byte[longestLiteral];
        bytes = bytes[..elf.ReadVirtualInto(address, bytes)];
        var end = bytes.IndexOf((byte)0);
        if (end < 5) return null;
        return PythonVersion.TryParse(Encoding.ASCII.GetString(bytes[..end]), out var v) && v is not null && CPythonFacts.IsPlausibleRelease(v) ? v : null;
    }

    internal static DetectedPythonVersion? FromRodataString(ElfImage elf, PythonVersion? fromName)
    {
        var section = elf.FindSection(".rodata");
        if (section is null || !section.HasFileData) return null;
        var found = elf.ScanSection(section, VersionLiterals);
        // Unrelated "3.x.y" strings exist (library versions); trust a literal only if it is the
        // single one matching the file name's 3.X, or the only one at all when the name says nothing.
        var matching = fromName is null ? found.ToList() : found.Where(v => v.Major == fromName.Major && v.Minor == fromName.Minor).ToList();
        return matching.Count == 1 ? new DetectedPythonVersion(matching[0], PythonVersionSource.VersionString, elf.Path) : null;
    }

    /// <summary>
    /// The NUL-delimited strings of <paramref name="data"/> that are exactly a PY_VERSION ("3.11.2", "3.13.0rc1",
    /// "3.12.1+"). Jumps from one "3." to the next (a vectorised search) rather than walking every string: .rodata is
    /// megabytes, and this runs before every attach.
    /// </summary>
    private static HashSet<PythonVersion> VersionLiterals(ReadOnlySpan<byte> data)
    {
        var found = new HashSet<PythonVersion>();
        var from = 0;
        while (from < data.Length)
        {
            var hit = data[from..].IndexOf("3."u8);
            if (hit < 0) break;
            var start = from + hit;
            from = start + 2;
            if (start > 0 && data[start - 1] != 0) continue;
            var end = data[start..].IndexOf((byte)0);
            var length = end < 0 ? data.Length - start : end;
            if (length is < 5 or > 12) continue;
            var s = Encoding.ASCII.GetString(data.Slice(start, length));
            if (PythonVersion.TryParse(s, out var v) && v is not null && CPythonFacts.IsPlausibleRelease(v))
                found.Add(v);
        }
        return found;
    }

    /// <summary>python3.9, python3.13t, libpython3.11.so.1.0, python3.11-dbg → major.minor; null otherwise.</summary>
    public static PythonVersion? FromFileName(string path)
    {
        var m = FileNameVersion().Match(path);
        return m.Success ? new PythonVersion(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)) : null;
    }
}
