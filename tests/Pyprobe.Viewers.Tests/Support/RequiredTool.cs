namespace Pyprobe.Viewers.Tests.Support;

/// <summary>
/// The viewers these tests open are installed by scripts/install-prerequisites.sh. Without one, a test fails under
/// CI=true (the prerequisites must have run) and otherwise says what it skipped and passes.
/// </summary>
internal static class RequiredTool
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The first of <paramref name="candidates"/> that exists, or null after reporting (or failing under CI) that <paramref name="name"/> is missing.</summary>
    public static string? Find(string name, string installs, params string[] candidates)
    {
        foreach (string candidate in candidates)
            if (File.Exists(candidate))
                return candidate;
        Missing(name, installs);
        return null;
    }

    /// <summary>Fails under CI=true; otherwise reports the skip.</summary>
    public static void Missing(string name, string installs)
    {
        string message = $"Missing {name} (scripts/install-prerequisites.sh installs {installs}).";
        if (InCi)
            Assert.Fail(message + " CI=true: failing rather than skipping.");
        Console.WriteLine(message + " Skipping.");
    }
}
