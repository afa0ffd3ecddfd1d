using System.CommandLine;
using Pyprobe.Cli.Commands;
using Pyprobe.Cli.Output;
using Pyprobe.Cli.Output.Formats;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The shared target and output options (for trace, calls, flow, gc, …), exercised in-process on
/// a throwaway command so their parsing rules are fixed before the commands exist.
/// </summary>
public class SharedOptionsTests
{
    private static (TargetOptions Target, OutputOptions Output, RootCommand Root) Build(OutputKind kind = OutputKind.EventStream)
    {
        var target = new TargetOptions();
        var output = new OutputOptions(kind);
        var command = new Command("probe-test");
        target.AddTo(command);
        output.AddTo(command);
        var root = new RootCommand { command };
        return (target, output, root);
    }

    private static TargetSelection Target(params string[] args)
    {
        var (target, _, root) = Build();
        // As the CLI does: the words after "--" are split off before parsing.
        var result = root.Parse(["probe-test", .. CommandTail.Split(args)]);
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
    [InlineData("unexpected argument 'python3' (a command to start goes after '--')", "-p", "1", "python3")]
    [InlineData("unexpected argument 'x' (a command to start goes after '--')", "x", "--", "python3")]
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
    [InlineData("text")]
    [InlineData("text", "--format", "text")]
    [InlineData("json", "--format", "json")]
    [InlineData("json", "-f", "json")]
    [InlineData("chrome", "--format", "chrome")]
    public void Format(string expected, params string[] args)
    {
        var (_, output, root) = Build();
        var result = root.Parse(["probe-test", "-p", "1", .. args]);
        Assert.Empty(result.Errors);
        Assert.Equal(expected, output.ReadFormat(result).Name);
    }

    [Theory]
    [InlineData("EventStream", "text|json|chrome", "expected text, json or chrome")]
    [InlineData("CallStatistics", "text|json", "expected text or json")]
    [InlineData("Rates", "text|json", "expected text or json")]
    [InlineData("Document", "text|json", "expected text or json")]
    [InlineData("EventStream, Capture", "text|json|chrome|raw", "expected text, json, chrome or raw")]
    public void Formats_come_from_the_registry_and_only_where_they_serve_the_kind(string kindName, string helpName, string expected)
    {
        var kind = Enum.Parse<OutputKind>(kindName);
        var (_, output, root) = Build(kind);
        Assert.Equal(helpName, output.Format.HelpName);
        var result = root.Parse(["probe-test", "-p", "1", "--format", "xml"]);
        Assert.Equal($"invalid format 'xml': {expected}", Assert.Single(result.Errors).Message);
        Assert.Equal((kind & OutputKind.EventStream) != 0, root.Parse(["probe-test", "-p", "1", "--format", "chrome"]).Errors.Count == 0);
    }

    [Fact]
    public void Every_format_is_named_once_and_text_serves_every_kind_but_profiles_and_captures()
    {
        Assert.Equal(OutputFormats.All.Count, OutputFormats.All.Select(f => f.Name).Distinct().Count());
        Assert.All(Enum.GetValues<OutputKind>(), kind => Assert.Equal(kind is not (OutputKind.Profile or OutputKind.Capture), OutputFormat.Text.Serves(kind)));
        Assert.Equal(["raw"], OutputFormats.For(OutputKind.Capture).Select(f => f.Name));
    }
}
