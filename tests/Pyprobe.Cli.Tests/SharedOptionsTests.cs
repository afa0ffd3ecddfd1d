using System.CommandLine;
using Pyprobe.Cli.Commands;
using Pyprobe.Cli.Output;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The shared target and output options (for trace, calls, flow, gc, …), exercised in-process on
/// a throwaway command so their parsing rules are fixed before the commands exist.
/// </summary>
public class SharedOptionsTests
{
    private static (TargetOptions Target, OutputOptions Output, RootCommand Root) Build()
    {
        var target = new TargetOptions();
        var output = new OutputOptions();
        var command = new Command("probe-test");
        target.AddTo(command);
        output.AddTo(command);
        var root = new RootCommand { command };
        return (target, output, root);
    }

    private static TargetSelection Target(params string[] args)
    {
        var (target, _, root) = Build();
        var result = root.Parse(["probe-test", .. args]);
        Assert.Empty(result.Errors);
        return target.Read(result);
    }

    [Fact]
    public void Pid_IsRepeatable()
    {
        var t = Assert.IsType<TargetSelection.Processes>(Target("-p", "12", "--pid", "34", "-p", "12"));
        Assert.Equal([12, 34], t.Pids);
    }

    [Fact]
    public void All_WithAndWithoutPath()
    {
        Assert.Null(Assert.IsType<TargetSelection.AllProcesses>(Target("--all")).Path);
        Assert.Equal("/usr/bin/python3.11", Assert.IsType<TargetSelection.AllProcesses>(Target("--all", "/usr/bin/python3.11")).Path);
    }

    [Fact]
    public void CommandAfterDoubleDash_KeepsItsOwnOptions()
    {
        var t = Assert.IsType<TargetSelection.Spawn>(Target("--", "python3", "-c", "print(1)", "-p", "x"));
        Assert.Equal(["python3", "-c", "print(1)", "-p", "x"], t.Argv);
    }

    [Theory]
    [InlineData("no target: give -p PID, --all [PATH] or -- CMD ARGS...")]
    [InlineData("give only one kind of target: -p PID, --all [PATH] or -- CMD ARGS...", "-p", "1", "--all")]
    [InlineData("give only one kind of target: -p PID, --all [PATH] or -- CMD ARGS...", "-p", "1", "--", "python3")]
    public void Target_NoneOrSeveral_IsAUsageError(string message, params string[] args)
    {
        var e = Assert.Throws<UsageException>(() => Target(args));
        Assert.Equal(message, e.Message);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void BadPid_IsAParseError()
    {
        var (_, _, root) = Build();
        var result = root.Parse(["probe-test", "-p", "-5"]);
        Assert.NotEmpty(result.Errors);
    }

    [Theory]
    [InlineData(OutputFormat.Text)]
    [InlineData(OutputFormat.Text, "--format", "text")]
    [InlineData(OutputFormat.Json, "--format", "json")]
    [InlineData(OutputFormat.Json, "-f", "json")]
    public void Format(OutputFormat expected, params string[] args)
    {
        var (_, output, root) = Build();
        var result = root.Parse(["probe-test", "-p", "1", .. args]);
        Assert.Empty(result.Errors);
        Assert.Equal(expected, output.ReadFormat(result));
    }
}
