namespace Pyprobe.Analysis.Tests;

/// <summary>
/// Integration tests need root (BPF) and real interpreters. They never skip: a missing piece is a
/// failure that says what is missing and how to get it.
/// </summary>
internal static class AnalysisRequirements
{
    public static void EnsureRoot()
    {
        if (Environment.UserName != "root")
            Assert.Fail("this test loads BPF programs into the kernel and must run as root");
    }

    public static void EnsureFile(string path)
    {
        if (!File.Exists(path))
            Assert.Fail($"{path} is missing: run scripts/test.sh (it installs and fetches the interpreters the tests use)");
    }
}
