using Pyprobe.Bpf.Sys;

namespace Pyprobe.Bpf.Programs;

/// <summary>The kernel refused a program; carries the verifier's log so the reason is never lost.</summary>
public sealed class VerifierException : SyscallException
{
    public VerifierException(string programName, int errno, string log, string hint, string disassembly)
        : base($"loading BPF program '{programName}'", errno, Summarize(log, hint))
    {
        ProgramName = programName;
        VerifierLog = log;
        Disassembly = disassembly;
    }

    public string ProgramName { get; }
    public string VerifierLog { get; }

    /// <summary>The program as the kernel saw it, numbered by slot like the verifier's "insn N".</summary>
    public string Disassembly { get; }

    /// <summary>The verifier's last non-empty line is almost always the reason; the full log stays available.</summary>
    private static string Summarize(string log, string hint)
    {
        var lastLine = log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault(line => !line.StartsWith("processed ", StringComparison.Ordinal) && !line.StartsWith("verification time", StringComparison.Ordinal));
        return lastLine is null ? hint : hint.Length == 0 ? lastLine : $"{lastLine} ({hint})";
    }
}
