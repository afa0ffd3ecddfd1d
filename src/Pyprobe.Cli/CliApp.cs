using System.CommandLine.Invocation;
using Pyprobe.Bpf.Links;
using Pyprobe.Cli.Commands;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli;

/// <summary>
/// Builds the command tree and applies the error policy shared by every command:
/// <list type="bullet">
/// <item>bad command line → one stderr line "pyprobe: …", exit 2;</item>
/// <item>runtime failure (<see cref="CliException"/>, <see cref="UsdtException"/>, I/O) → one line, exit 1;</item>
/// <item>no stack traces unless PYPROBE_DEBUG=1, which appends the full exception after the line.</item>
/// </list>
/// </summary>
internal static class CliApp
{
    public const string Name = "pyprobe";
    /// <summary>Start of the message for an unknown option; argument validators use it too.</summary>
    public const string UnknownOption = "unknown option";

    /// <summary>Every subcommand, by the name it is invoked with, in the order help lists them.</summary>
    internal static readonly (string Name, Func<Command> Create)[] Subcommands =
    [
        ("list", ListCommand.Create), ("trace", TraceCommand.Create), ("convert", ConvertCommand.Create),
        ("calls", CallsCommand.Create), ("flow", FlowCommand.Create), ("top", TopCommand.Create), ("gc", GcCommand.Create),
        ("imports", ImportsCommand.Create), ("audit", AuditCommand.Create), ("stat", StatCommand.Create),
        ("record", RecordCommand.Create), ("serve", ServeCommand.Create), ("dump", DumpCommand.Create),
    ];

    /// <summary>
    /// The command tree; with <paramref name="only"/>, the root and that one subcommand. A command line that starts with
    /// a subcommand's name is parsed by that subcommand alone (no sibling's options, help or suggestions can enter), and
    /// building the other twelve with their options was a few milliseconds of every launch.
    /// </summary>
    public static RootCommand BuildRootCommand(string? only = null)
    {
        var root = new RootCommand("pyprobe: trace CPython through its USDT probes with eBPF.");
        foreach (var (name, create) in Subcommands)
            if (only is null || name == only) root.Subcommands.Add(create());
        return root;
    }

    /// <summary>
    /// The root and one subcommand, without RootCommand's help and version options and directives: for a command line that
    /// uses none of them, the usual case. Building those options reads their descriptions through System.CommandLine's
    /// ResourceManager, about a millisecond of every launch (reflection on the first lookup).
    /// </summary>
    private static Command BuildBareRoot(string only)
    {
        var root = new Command(Name);
        root.Subcommands.Add(Subcommands.First(c => c.Name == only).Create());
        return root;
    }

    /// <summary>
    /// Words that only the full root understands: a help or version option (RootCommand's, recursive) or a response file
    /// (directives come before a subcommand's name). The words after "--" are the traced command's and are not looked at.
    /// </summary>
    private static bool MayNeedTheRoot(string[] words) =>
        words.Any(w => w is "-h" or "--help" or "-?" or "/h" or "/?" or "--version" || w.StartsWith('@'));

    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= StandardOutput.Instance;
        stderr ??= Console.Error;
        var words = CommandTail.Split(args);
        if (AttachesUprobes(args, words))
        {
            UprobeRegistrationWarmup.Start();
            Commands.Trace.RecordMapAhead.StartFor(words);
        }
        LaunchPhases.Mark("launch threads started");
        try
        {
            var only = words.Length > 0 && Subcommands.Any(c => c.Name == words[0]) ? words[0] : null;
            var parseResult = (only is null || MayNeedTheRoot(words) ? BuildRootCommand(only) : BuildBareRoot(only)).Parse(words);
            // Whatever went wrong, the full tree says it as it always has.
            if (parseResult.Errors.Count > 0 && parseResult.RootCommandResult.Command is not RootCommand)
                parseResult = BuildRootCommand(only).Parse(words);
            LaunchPhases.Mark("command line parsed");
            // Help/--version clear parse errors; anything else with errors is a usage error.
            if (parseResult.Errors.Count > 0 && parseResult.Action is null or ParseErrorAction)
                return Fail(stderr, $"{ParseErrorMessage(parseResult)} {HelpHint(parseResult)}", ExitCodes.Usage, null);
            var config = new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                Output = stdout,
                Error = stderr,
            };
            try
            {
                return parseResult.Invoke(config);
            }
            catch (UsageException e)
            {
                return Fail(stderr, $"{Sentence(e.Message)} {HelpHint(parseResult)}", e.ExitCode, e);
            }
        }
        catch (CliException e)
        {
            return Fail(stderr, e.Message, e.ExitCode, e);
        }
        catch (UsdtException e)
        {
            return Fail(stderr, e.Message, ExitCodes.Failure, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(stderr, e.Message, ExitCodes.Failure, e);
        }
        catch (Exception e)
        {
            return Fail(stderr, $"internal error ({e.GetType().Name}): {e.Message} (set PYPROBE_DEBUG=1 for details)", ExitCodes.Failure, e);
        }
        finally
        {
            Commands.Trace.RecordMapAhead.Discard();
        }
    }

    /// <summary>Commands that attach uprobes, named first: they start the kernel's registration wait at launch (see <see cref="UprobeRegistrationWarmup"/>).</summary>
    private static readonly HashSet<string> UprobeCommands = ["trace", "calls", "flow", "top", "gc", "imports", "audit", "stat", "serve"];

    /// <param name="words">The words before "--" (<see cref="CommandTail.Split"/>): a help option there means no attach, one in the traced command's words does not.</param>
    private static bool AttachesUprobes(string[] args, string[] words) =>
        args.Length > 1 && UprobeCommands.Contains(args[0]) && !MayNeedTheRoot(words);

    private static string ParseErrorMessage(ParseResult parseResult)
    {
        // "pyprobe frob" yields both "required command was not provided" and the unmatched
        // token; the token is what the user got wrong.
        // An unknown option beats everything else: a free argument may have swallowed it (the
        // commands' argument validators then report "unknown option '-x'"), pushing the real
        // argument to the unmatched tokens.
        if (parseResult.Errors.FirstOrDefault(e => e.Message.StartsWith(UnknownOption, StringComparison.Ordinal)) is { } swallowed)
            return swallowed.Message;
        if (parseResult.UnmatchedTokens.FirstOrDefault(t => t.StartsWith('-')) is { } option)
            return $"{UnknownOption} '{option}'";
        if (parseResult.UnmatchedTokens.Count > 0)
            return $"unknown command or argument '{parseResult.UnmatchedTokens[0]}'";
        return Sentence(parseResult.Errors[0].Message);
    }

    /// <summary>"(see 'pyprobe list --help')" inside a subcommand, "(see 'pyprobe --help')" otherwise.</summary>
    private static string HelpHint(ParseResult parseResult)
    {
        var command = parseResult.CommandResult.Command;
        return command is RootCommand ? $"(see '{Name} --help')" : $"(see '{Name} {command.Name} --help')";
    }

    private static int Fail(TextWriter stderr, string message, int exitCode, Exception? exception)
    {
        stderr.WriteLine($"{Name}: {Sentence(message)}");
        if (exception is not null && IsDebug)
            stderr.WriteLine(exception.ToString());
        stderr.Flush();
        return exitCode;
    }

    public static bool IsDebug => Environment.GetEnvironmentVariable("PYPROBE_DEBUG") == "1";

    /// <summary>
    /// One line, in the style of the rest of the message: newlines folded, a trailing period
    /// dropped, and a leading capital lowered when it starts an ordinary word ("No process…" →
    /// "no process…", but "PID 5…" and "/usr/bin/…" stay).
    /// </summary>
    internal static string Sentence(string message)
    {
        var s = string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (s.EndsWith('.') && !s.EndsWith("..", StringComparison.Ordinal))
            s = s[..^1];
        if (s.Length > 1 && char.IsUpper(s[0]) && char.IsLower(s[1]))
            s = char.ToLowerInvariant(s[0]) + s[1..];
        return s;
    }
}
