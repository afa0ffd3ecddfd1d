using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// Support/unwind_chain.c built with given gcc flags and run: its registers and stack copy as the leaf captured them,
/// while the process stays alive (blocked in pause()) for its /proc/PID/maps.
/// </summary>
public sealed class UnwindChainProgram : IDisposable
{
    private readonly RunningProcess _process;

    private UnwindChainProgram(RunningProcess process, string path, ulong ip, ulong sp, ulong bp, byte[] stack)
    {
        _process = process;
        Path = path;
        (Ip, Sp, Bp, Stack) = (ip, sp, bp, stack);
    }

    public string Path { get; }
    public int Pid => _process.Pid;
    public ulong Ip { get; }
    public ulong Sp { get; }
    public ulong Bp { get; }
    public byte[] Stack { get; }

    /// <summary>Compiles with <paramref name="flags"/> into <paramref name="directory"/>; null (after reporting) without gcc.</summary>
    public static string? Compile(string directory, string name, ITestOutputHelper output, params string[] flags)
    {
        if (!File.Exists("/usr/bin/gcc"))
        {
            TestPythons.Missing("gcc", output);
            return null;
        }
        var source = System.IO.Path.Combine(AppContext.BaseDirectory, "Support", "unwind_chain.c");
        var exe = System.IO.Path.Combine(directory, name);
        var psi = new ProcessStartInfo("/usr/bin/gcc", [.. flags, "-o", exe, source]) { RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        return exe;
    }

    /// <summary>Runs <paramref name="exe"/> until it reports its capture.</summary>
    public static UnwindChainProgram Run(string exe)
    {
        var stackFile = exe + ".stack";
        var process = RunningProcess.Start(exe, [stackFile], _ => true);
        try
        {
            var line = process.ReadLine(TimeSpan.FromSeconds(10)) ?? throw new InvalidOperationException($"{exe} printed nothing");
            var f = line.Split(' ');
            var stack = File.ReadAllBytes(stackFile);
            Assert.Equal(Hex(f[3]), (ulong)stack.Length);
            return new UnwindChainProgram(process, exe, Hex(f[0]), Hex(f[1]), Hex(f[2]), stack);
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    private static ulong Hex(string digits) => ulong.Parse(digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public void Dispose() => _process.Dispose();
}
