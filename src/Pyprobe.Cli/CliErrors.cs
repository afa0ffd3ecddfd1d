namespace Pyprobe.Cli;

/// <summary>Process exit codes. Everything that is not success is one stderr line starting with "pyprobe: ".</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    /// <summary>Runtime failure: no such pid, not Python, no probes, unreadable file, BPF refused…</summary>
    public const int Failure = 1;
    /// <summary>Bad command line: unknown option, malformed value, conflicting targets.</summary>
    public const int Usage = 2;
}

/// <summary>
/// An error meant for the user: its message becomes the single "pyprobe: …" line on stderr and
/// <see cref="ExitCode"/> the exit status. Commands throw this (or let library exceptions such as
/// <see cref="Pyprobe.Usdt.UsdtException"/> escape); <see cref="CliApp"/> does the printing.
/// </summary>
internal class CliException(string message, int exitCode = ExitCodes.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The target gives no function events (no function probes, or none that fire on its version): top samples instead.</summary>
internal sealed class NoFunctionEventsException(string message) : CliException(message);

/// <summary>A command line that parses but makes no sense (conflicting or missing targets). Exit 2.</summary>
internal sealed class UsageException(string message) : CliException(message, ExitCodes.Usage);
