using System.Diagnostics;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The error policy: one stderr line starting with "pyprobe: ", nothing on stdout, exit 1 for
/// runtime failures and 2 for usage errors, never a stack trace (unless PYPROBE_DEBUG=1).
/// </summary>
public class ErrorTests
{
    private static string AssertOneLineError(CliResult r, int exitCode)
    {
        Assert.True(r.ExitCode == exitCode, $"expected exit {exitCode}\n{r}");
        Assert.Equal("", r.Stdout);
        Assert.EndsWith("\n", r.Stderr);
        var line = r.Stderr[..^1];
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("pyprobe: ", line);
        Assert.DoesNotContain(" at Pyprobe.", line);
        return line;
    }

    /// <summary>Every command that takes a command to start after --.</summary>
    public static TheoryData<string> CommandsThatStartACommand => ["trace", "calls", "flow", "top", "gc", "imports", "audit", "stat", "record"];

    public static TheoryData<string> PyenvPythons()
    {
        var data = new TheoryData<string>();
        foreach (var p in CachedPythons.Pyenv()) data.Add(p);
        if (data.Count == 0) data.Add("(none)");
        return data;
    }

    [Theory]
    [MemberData(nameof(PyenvPythons))]
    public void Path_PythonWithoutProbes_Exit1_SaysBuiltWithoutDtrace(string python)
    {
        if (python == "(none)")
            Assert.Fail("no pyenv CPython under ~/.pyenv/versions: this test needs an interpreter built without --with-dtrace (e.g. pyenv install 3.11)");
        var line = AssertOneLineError(PyprobeBinary.Run("list", python), 1);
        Assert.StartsWith($"pyprobe: {python} (CPython 3.", line);
        Assert.Contains("has no USDT probes: it was built without --with-dtrace; use a build with probes, such as Debian's", line);
    }

    /// <summary>
    /// An output that fails while events flow (-o /dev/full: no space left) ends the run with its one-line error and exit
    /// 1; the command pyprobe started goes on, untraced, and pyprobe says so with its pid first (it is no longer the
    /// terminal's foreground job).
    /// </summary>
    [Fact]
    public void AnOutputThatFailsMidRun_Exit1_TheCommandGoesOnAndIsNamed()
    {
        // The command lets go of pyprobe's pipes, so that the run's end is pyprobe's own.
        const string script = "import os, time\nnull = os.open('/dev/null', os.O_RDWR)\nfor fd in (0, 1, 2): os.dup2(null, fd)\n"
            + "def f(): pass\nfor i in range(200000): f()\ntime.sleep(60)\n";
        var result = PyprobeBinary.Run(["trace", "-o", "/dev/full", "--", CachedPythons.Executable("debian:3.9"), "-c", script], timeout: TimeSpan.FromSeconds(60));
        var going = System.Text.RegularExpressions.Regex.Match(result.Stderr, @"^pyprobe: the command \(pid (\d+)\) goes on running, no longer traced$", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(going.Success, result.ToString());
        var pid = int.Parse(going.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.EndsWith("\npyprobe: no space left on device : '/dev/full'\n", result.Stderr);
            Assert.True(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("python3.9", StringComparison.Ordinal), $"the command (pid {pid}) is gone");
        }
        finally
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
        }
    }

    [Fact]
    public void Pid_PythonWithoutProbes_Exit1_SaysBuiltWithoutDtrace()
    {
        var python = CachedPythons.Pyenv().FirstOrDefault(p => p.EndsWith("/python3.11", StringComparison.Ordinal))
            ?? CachedPythons.Pyenv().FirstOrDefault();
        if (python is null)
            Assert.Fail("no pyenv CPython under ~/.pyenv/versions: this test needs an interpreter built without --with-dtrace (e.g. pyenv install 3.11)");
        using var process = RunningProcess.Python(python);
        var line = AssertOneLineError(PyprobeBinary.Run("list", "-p", process.Pid.ToString()), 1);
        Assert.StartsWith($"pyprobe: process {process.Pid} runs CPython 3.", line);
        Assert.Contains("which was built without --with-dtrace and has no USDT probes; use a build with probes", line);
    }

    [Fact]
    public void Pid_NotPython_Exit1()
    {
        using var sleep = RunningProcess.Start("sleep", "60");
        var line = AssertOneLineError(PyprobeBinary.Run("list", "-p", sleep.Pid.ToString()), 1);
        Assert.Equal($"pyprobe: process {sleep.Pid} (/usr/bin/sleep) is not a Python interpreter: it maps neither a libpython3.X.so nor a python3.X executable", line);
    }

    [Fact]
    public void Pid_NoSuchProcess_Exit1()
    {
        int pid = 999999;
        while (Directory.Exists($"/proc/{pid}")) pid++;
        var line = AssertOneLineError(PyprobeBinary.Run("list", "-p", pid.ToString()), 1);
        Assert.Equal($"pyprobe: no process with PID {pid}", line);
    }

    [Fact]
    public void Path_Missing_Exit1() =>
        Assert.Equal("pyprobe: /nonexistent/python3.11: no such file",
            AssertOneLineError(PyprobeBinary.Run("list", "/nonexistent/python3.11"), 1));

    [Fact]
    public void Path_Directory_Exit1() =>
        Assert.Equal("pyprobe: /usr/bin is a directory, not an ELF file",
            AssertOneLineError(PyprobeBinary.Run("list", "/usr/bin"), 1));

    [Fact]
    public void Path_NotElf_Exit1() =>
        Assert.Equal("pyprobe: /etc/hostname is not an ELF file",
            AssertOneLineError(PyprobeBinary.Run("list", "/etc/hostname"), 1));

    [Fact]
    public void Path_ElfWithoutProbesNotPython_Exit1() =>
        Assert.Equal("pyprobe: /usr/bin/sleep has no USDT probes (no .note.stapsdt section) and is not a CPython interpreter",
            AssertOneLineError(PyprobeBinary.Run("list", "/usr/bin/sleep"), 1));

    [Fact]
    public void DefaultPython3_IsAScript_Exit1()
    {
        var dir = Directory.CreateTempSubdirectory("pyprobe-shim-");
        try
        {
            var shim = Path.Combine(dir.FullName, "python3");
            File.WriteAllText(shim, "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n");
            File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var r = PyprobeBinary.Run(["list"], new Dictionary<string, string?> { ["PATH"] = $"{dir.FullName}:/usr/bin:/bin" });
            var line = AssertOneLineError(r, 1);
            Assert.StartsWith($"pyprobe: the python3 on PATH, {shim}, is a script", line);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("pyprobe: unknown option '--bogus' (see 'pyprobe list --help')", "list", "--bogus")]
    [InlineData("pyprobe: unknown option '-x' (see 'pyprobe list --help')", "list", "-x", "/usr/bin/python3.11")]
    [InlineData("pyprobe: invalid PID 'abc': expected a positive integer (see 'pyprobe list --help')", "list", "-p", "abc")]
    [InlineData("pyprobe: invalid PID '0': expected a positive integer (see 'pyprobe list --help')", "list", "-p", "0")]
    [InlineData("pyprobe: invalid format 'xml': expected text or json (see 'pyprobe list --help')", "list", "--format", "xml")]
    [InlineData("pyprobe: give either PATH or -p PID, not both (see 'pyprobe list --help')", "list", "-p", "1", "/usr/bin/python3.11")]
    [InlineData("pyprobe: list takes one -p PID (see 'pyprobe list --help')", "list", "-p", "1", "-p", "2")]
    [InlineData("pyprobe: unknown command or argument 'b' (see 'pyprobe list --help')", "list", "a", "b")]
    [InlineData("pyprobe: unknown command or argument 'frobnicate' (see 'pyprobe --help')", "frobnicate")]
    [InlineData("pyprobe: required command was not provided (see 'pyprobe --help')")]
    // A word the parser does not know as an option lands in a free argument (the command to start, trace's
    // PROBE words, convert's FILE); it is named as what it is, not taken for a target, a probe or a file.
    [InlineData("pyprobe: unknown option '-x' (see 'pyprobe record --help')", "record", "-p", "1", "-x", "3")]
    [InlineData("pyprobe: unknown option '--bogus' (see 'pyprobe calls --help')", "calls", "--bogus", "--", "python3", "-c", "pass")]
    [InlineData("pyprobe: unknown option '--bogus' (see 'pyprobe trace --help')", "trace", "-p", "1", "--bogus")]
    [InlineData("pyprobe: unknown option '-z' (see 'pyprobe convert --help')", "convert", "-z")]
    [InlineData("pyprobe: --duration must be positive (see 'pyprobe record --help')", "record", "-p", "1", "-d", "0")]
    [InlineData("pyprobe: unexpected argument 'foo' (a command to start goes after '--') (see 'pyprobe record --help')", "record", "-p", "1", "foo")]
    [InlineData("pyprobe: unexpected argument 'foo' (a command to start goes after '--') (see 'pyprobe calls --help')", "calls", "foo", "--", "python3", "-c", "pass")]
    public void Usage_Exit2_OneLine(string expected, params string[] args) =>
        Assert.Equal(expected, AssertOneLineError(PyprobeBinary.Run(args), 2));

    /// <summary>
    /// An -o file that cannot be written fails the command before the command it was to start runs any of its own code,
    /// and leaves no process of it behind. calls, top and stat once opened the file after attaching (calls ran the whole
    /// command, then failed at its report; stat's check came after the command was started, stopped at its exec, and the
    /// stopped process was left there); record sampled for the whole run and failed at the end.
    /// </summary>
    [Theory]
    [MemberData(nameof(CommandsThatStartACommand))]
    public void AnOutputFileThatCannotBeWrittenFailsBeforeTheCommandRuns(string command)
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-out-").FullName;
        try
        {
            var marker = Path.Combine(folder, "started");
            var missing = Path.Combine(folder, "missing", "out");
            var r = PyprobeBinary.Run([command, "-o", missing, "--", CachedPythons.Get("3.11").LauncherPath, "-c", $"open('{marker}', 'w')"]);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Equal("", r.Stdout);
            Assert.Equal($"pyprobe: cannot write {missing}: there is no folder {Path.GetDirectoryName(missing)}", r.Stderr.TrimEnd('\n').Split('\n')[^1]);
            Assert.False(File.Exists(marker), "the command ran");
            var left = Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _))
                .Where(d => { try { return File.ReadAllText(Path.Combine(d, "cmdline")).Contains(marker); } catch (IOException) { return false; } })
                .Select(Path.GetFileName).ToList();
            foreach (var pid in left) Process.Start("kill", ["-9", pid!])?.WaitForExit();
            Assert.True(left.Count == 0, $"left behind: pid {string.Join(", ", left)}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// A command after -- that is not there is said in one line with exit 1, by every command that starts one (record
    /// and top, which sample, once started it and said it was attached before the shell said it was not found).
    /// </summary>
    [Theory]
    [MemberData(nameof(CommandsThatStartACommand))]
    public void ACommandThatIsNotThereIsOneLine(string command) =>
        Assert.Equal("pyprobe: /nonexistent/command: command not found", AssertOneLineError(PyprobeBinary.Run([command, "--", "/nonexistent/command"]), 1));

    /// <summary>A command line refused for what it asks is refused before -o is created: no empty file is left.</summary>
    [Fact]
    public void SampledTopRefusesJsonWithoutCreatingTheFile()
    {
        var folder = Directory.CreateTempSubdirectory("pyprobe-out-").FullName;
        try
        {
            var marker = Path.Combine(folder, "started");
            var output = Path.Combine(folder, "top.json");
            var r = PyprobeBinary.Run(["top", "--sample", "-f", "json", "-o", output, "--", CachedPythons.Get("3.11").LauncherPath, "-c", $"open('{marker}', 'w')"]);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Equal("pyprobe: top prints text when it samples (asked for with --sample); use pyprobe record for a file", r.Stderr.TrimEnd('\n'));
            Assert.False(File.Exists(output), "-o was created");
            Assert.False(File.Exists(marker), "the command ran");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Debug_AddsTheStackTrace()
    {
        var r = PyprobeBinary.Run(["list", "/etc/hostname"], new Dictionary<string, string?> { ["PYPROBE_DEBUG"] = "1" });
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("pyprobe: /etc/hostname is not an ELF file\n", r.Stderr);
        Assert.Contains("UsdtException", r.Stderr);
    }

    /// <summary>
    /// A command line naming a subcommand is parsed by a tree of the root and that subcommand alone: each entry of the
    /// table must build the command it is named after, and the full tree (root help) lists every one.
    /// </summary>
    [Fact]
    public void SubcommandTable_NamesWhatEachEntryBuilds()
    {
        foreach (var (name, create) in CliApp.Subcommands) Assert.Equal(name, create().Name);
        Assert.Equal(CliApp.Subcommands.Select(c => c.Name), CliApp.BuildRootCommand().Subcommands.Select(c => c.Name));
        Assert.Equal(["trace"], CliApp.BuildRootCommand("trace").Subcommands.Select(c => c.Name));
        var help = PyprobeBinary.Run("--help");
        foreach (var (name, _) in CliApp.Subcommands) Assert.Contains($"  {name} ", help.Stdout);
    }

    [Fact]
    public void Help_Exit0_ListsTheListCommand()
    {
        var r = PyprobeBinary.Run("--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("list", r.Stdout);
        var list = PyprobeBinary.Run("list", "--help");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("-p, --pid <PID>", list.Stdout);
        Assert.Contains("--format <text|json>", list.Stdout);
    }
}
