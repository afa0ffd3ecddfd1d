namespace Pyprobe.Python.Probes;

/// <summary>Whether a probe fires on a given CPython version.</summary>
public enum ProbeFiring
{
    Yes,
    Partly,
    No,
}

/// <summary>A verdict with the reason, so users learn why and not only what.</summary>
public sealed record ProbeSupport(ProbeFiring Firing, string Reason)
{
    public static ProbeSupport Yes(string reason = "") => new(ProbeFiring.Yes, reason);
    public static ProbeSupport Partly(string reason) => new(ProbeFiring.Partly, reason);
    public static ProbeSupport No(string reason) => new(ProbeFiring.No, reason);

    public override string ToString() => Reason.Length == 0 ? Firing.ToString().ToLowerInvariant() : $"{Firing.ToString().ToLowerInvariant()}: {Reason}";
}
