namespace Pyprobe.Usdt;

/// <summary>
/// Every failure of this library (unreadable or malformed ELF files, bad stapsdt notes, unknown
/// argument forms, unresolvable symbols, process lookup problems) surfaces as this type or a
/// subclass, so the CLI can print <see cref="Exception.Message"/> without a stack trace and never
/// sees IndexOutOfRange/EndOfStream leaking out of the parsers.
/// </summary>
public class UsdtException : Exception
{
    public UsdtException(string message) : base(message) { }
    public UsdtException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>An argument spec of a note could not be parsed; names the probe and the offending text.</summary>
public sealed class UsdtArgumentException : UsdtException
{
    public UsdtArgumentException(string probe, string argumentText, string reason)
        : base($"USDT probe {probe}: cannot parse argument '{argumentText}': {reason}")
    {
        Probe = probe;
        ArgumentText = argumentText;
    }

    /// <summary>"provider:name" of the note, or "?" when parsed without note context.</summary>
    public string Probe { get; }
    public string ArgumentText { get; }
}
