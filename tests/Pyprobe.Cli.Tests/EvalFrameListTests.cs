namespace Pyprobe.Cli.Tests;

/// <summary>`pyprobe list -v` says where each interpreter's function events come from and what they cost, probes or not.</summary>
public class EvalFrameListTests
{
    [Theory]
    [InlineData("3.9", "functions  USDT, about")]
    [InlineData("3.11", "functions  USDT, about 0.6-1.4 µs per event; function__entry fires only with the line gate open")]
    [InlineData("3.13", "functions  uprobe on _PyEval_EvalFrameDefault with the eval-frame hook, about 1.0-1.5 µs per entry, about 10 µs more per return")]
    [InlineData("3.14", "functions  uprobe on _PyEval_EvalFrameDefault with the eval-frame hook, about")]
    [InlineData("3.15", "functions  USDT, about")]
    public void DebianBuildsNameTheirSource(string version, string expected)
    {
        var result = PyprobeBinary.Run(["list", "-v", CachedPythons.Get(version).BinaryPath]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(expected, result.Stdout);
    }

    [Theory]
    [InlineData("3.9.18", "uprobe on _PyEval_EvalFrameDefault, about")]
    [InlineData("3.12.1", "uprobe on _PyEval_EvalFrameDefault with the eval-frame hook, about")]
    public void ALibpythonWithoutProbesStillNamesItsSource(string version, string expected)
    {
        var minor = string.Join('.', version.Split('.').Take(2));
        var library = $"/root/.pyenv/versions/{version}/lib/libpython{minor}.so.1.0";
        if (!File.Exists(library)) Assert.Fail($"{library} is missing: install CPython {version} with pyenv (--enable-shared)");
        var result = PyprobeBinary.Run(["list", "-v", library]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith($"{library}: CPython {minor}", result.Stdout); // pyenv's 3.9 names only its minor version
        Assert.Contains(", no USDT probes (built without --with-dtrace)", result.Stdout);
        Assert.Contains(expected, result.Stdout);
        // Without -v nothing can be listed: still the one-line error.
        Assert.Equal(1, PyprobeBinary.Run(["list", library]).ExitCode);
    }
}
