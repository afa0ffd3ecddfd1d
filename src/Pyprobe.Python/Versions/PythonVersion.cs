using System.Globalization;

namespace Pyprobe.Python.Versions;

/// <summary>
/// A CPython version. Micro, ReleaseLevel ("alpha", "beta", "candidate", "final") and Serial are
/// null when the detection method cannot know them (file-name fallback gives only 3.X).
/// </summary>
public sealed partial record PythonVersion(int Major, int Minor, int? Micro = null, string? ReleaseLevel = null, int? Serial = null)
    : IComparable<PythonVersion>
{
    /// <summary>Decodes PY_VERSION_HEX (0xMMmmuuLS: major, minor, micro, level A/B/C/F, serial).</summary>
    public static PythonVersion FromHex(ulong hex)
    {
        int level = (int)(hex >> 4) & 0xf;
        string releaseLevel = level switch
        {
            0xA => "alpha",
            0xB => "beta",
            0xC => "candidate",
            0xF => "final",
            _ => throw new ArgumentException($"0x{hex:x} is not a PY_VERSION_HEX value (release level nibble {level:x})."),
        };
        return new PythonVersion((int)(hex >> 24) & 0xff, (int)(hex >> 16) & 0xff, (int)(hex >> 8) & 0xff, releaseLevel, (int)hex & 0xf);
    }

    /// <summary>Whether a value looks like a plausible PY_VERSION_HEX of CPython 3.</summary>
    public static bool IsPlausibleHex(ulong hex) =>
        hex >> 32 == 0 && (hex >> 24) == 3 && ((hex >> 16) & 0xff) < 100 && ((hex >> 4) & 0xf) is 0xA or 0xB or 0xC or 0xF;

    // Compiled at build time: a Regex made at run time builds its interpreter at the first parse, on every attach.
    [System.Text.RegularExpressions.GeneratedRegex(@"^(\d+)\.(\d+)(?:\.(\d+))?(?:(a|b|rc)(\d+))?\+?$")]
    private static partial System.Text.RegularExpressions.Regex Spelling();

    /// <summary>Parses "3.11.2", "3.13.0rc1", "3.15.0a3", "3.12.1+" (as PY_VERSION is spelled).</summary>
    public static bool TryParse(string text, out PythonVersion? version)
    {
        version = null;
        var m = Spelling().Match(text);
        if (!m.Success) return false;
        int? micro = m.Groups[3].Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : null;
        string? level = null;
        int? serial = null;
        if (m.Groups[4].Success)
        {
            level = m.Groups[4].Value switch { "a" => "alpha", "b" => "beta", _ => "candidate" };
            serial = int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture);
        }
        else if (micro is not null)
        {
            level = "final";
            serial = 0;
        }
        version = new PythonVersion(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
            int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), micro, level, serial);
        return true;
    }

    /// <summary>"3.11", "3.11.2", "3.13.0rc1".</summary>
    public override string ToString()
    {
        var s = Micro is int u ? $"{Major}.{Minor}.{u}" : $"{Major}.{Minor}";
        return ReleaseLevel switch
        {
            "alpha" => $"{s}a{Serial}",
            "beta" => $"{s}b{Serial}",
            "candidate" => $"{s}rc{Serial}",
            _ => s,
        };
    }

    /// <summary>Compares major and minor only when either side lacks a micro version.</summary>
    public int CompareTo(PythonVersion? other)
    {
        if (other is null) return 1;
        int c = Major.CompareTo(other.Major);
        if (c != 0) return c;
        c = Minor.CompareTo(other.Minor);
        if (c != 0 || Micro is null || other.Micro is null) return c;
        return Micro.Value.CompareTo(other.Micro.Value);
    }

    /// <summary>True if this is at least major.minor.</summary>
    public bool IsAtLeast(int major, int minor) => Major > major || (Major == major && Minor >= minor);
}

/// <summary>How a <see cref="PythonVersion"/> was found, most to least reliable.</summary>
public enum PythonVersionSource
{
    /// <summary>_Py_DebugOffsets.version at the start of the .PyRuntime section (3.13+).</summary>
    DebugOffsets,
    /// <summary>The exported Py_Version data symbol (3.11+).</summary>
    PyVersionSymbol,
    /// <summary>The PY_VERSION literal Py_GetVersion's code names.</summary>
    GetVersionLiteral,
    /// <summary>A PY_VERSION string literal in .rodata.</summary>
    VersionString,
    /// <summary>The file name (python3.X, libpython3.X.so…); major.minor only.</summary>
    FileName,
}

/// <summary>A detected version, the method, and the file it came from.</summary>
public sealed record DetectedPythonVersion(PythonVersion Version, PythonVersionSource Source, string Path);
