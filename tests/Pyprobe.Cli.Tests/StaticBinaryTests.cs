using System.Diagnostics;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// dist/pyprobe is linked statically: no dynamic loader runs before it (the start-up it saves is in docs/facts.md), and
/// it needs no library of the machine it runs on. Checked on the file, and by running it where the machine's libraries
/// are hidden.
/// </summary>
public sealed class StaticBinaryTests
{
    private const string Python311 = "/usr/bin/python3.11";

    [Fact]
    public void TheBinaryNamesNoDynamicLoaderAndNoLibraries()
    {
        Assert.True(File.Exists(PyprobeBinary.Path), $"{PyprobeBinary.Path} is missing: run scripts/build.sh");
        var elf = ElfImage.Open(PyprobeBinary.Path);
        Assert.Null(elf.FindSection(".interp"));
        Assert.Null(elf.FindSection(".dynamic"));
    }

    [Fact]
    public void ItListsProbesWhereTheMachinesLibrariesAreHidden()
    {
        Assert.True(File.Exists(PyprobeBinary.Path), $"{PyprobeBinary.Path} is missing: run scripts/build.sh");
        // An empty /usr/lib in a mount namespace of its own (/lib and /lib64 lead there on Debian): the loader and libc are
        // gone for every program started after the mount. The shell was loaded before it, and only execs.
        var hidden = HiddenLibraries(PyprobeBinary.Path, "list", Python311);
        Assert.True(hidden.ExitCode == 0, hidden.ToString());
        Assert.Contains("function__entry", hidden.Stdout);
        Assert.Contains("gc__start", hidden.Stdout);

        // The same namespace stops a dynamically linked program: the check hides what it claims to.
        var dynamic = HiddenLibraries(Python311, "-c", "pass");
        Assert.NotEqual(0, dynamic.ExitCode);
    }

    private static CliResult HiddenLibraries(string program, params string[] args)
    {
        var info = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /usr/lib && exec \"$@\"", "sh", program })
            info.ArgumentList.Add(arg);
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} with the libraries hidden did not finish in time");
        }
        process.WaitForExit();
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
