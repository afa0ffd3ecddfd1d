using System.CommandLine.Parsing;

namespace Pyprobe.Cli.Commands;

// The options every tracing command shares, defined once. A command creates its own instances
// (a System.CommandLine symbol belongs to one command) and reads them back with Read():
//
//   var target = new TargetOptions();            // -p/--pid PID (repeatable), --all [PATH], -- CMD ARGS...
//   var output = new OutputOptions(OutputKind.CallStatistics); // --format text|json, -o/--output FILE
//   var command = new Command("calls", "…");
//   target.AddTo(command);
//   output.AddTo(command);
//   command.SetAction(r => { var t = target.Read(r); using var sink = output.Open(r); … return 0; });
//
// Commands that take only part of the target set (list: a PATH or one -p) use the single-option
// factories in SharedOptions so the spelling, help text and value checks stay identical.

/// <summary>Factories for the individual shared options.</summary>
internal static class SharedOptions
{
    /// <summary>-p/--pid PID, repeatable (-p 1 -p 2); values must be positive integers.</summary>
    public static Option<int[]> Pid() => new("--pid", "-p")
    {
        Description = "Trace the Python process PID (repeat for several processes).",
        HelpName = "PID",
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
        CustomParser = ParsePids,
    };

    /// <summary>--all [PATH]: every process running the interpreter (default: every Python with probes).</summary>
    public static Option<string?> All() => new("--all")
    {
        Description = "Trace every process that runs PATH (default: every running Python with probes, and new ones).",
        HelpName = "PATH",
        Arity = ArgumentArity.ZeroOrOne,
    };

    /// <summary>CMD ARGS… after "--": start this command and trace it from its first instruction.</summary>
    public static Argument<string[]> Command() => RejectingOptions(new Argument<string[]>("command")
    {
        Description = "After '--': a command to start and trace (pyprobe … -- python3 app.py).",
        HelpName = "-- CMD ARGS",
        Arity = ArgumentArity.ZeroOrMore,
    });

    /// <summary>
    /// System.CommandLine hands a word it does not know as an option ("-d 3", "--bogus") to a free
    /// argument; this makes the argument say "unknown option '-d'" instead of treating it as a
    /// command to start or a name (the real command's own options come after "--", which the
    /// parser never sees: <see cref="CommandTail"/>).
    /// </summary>
    public static Argument<T> RejectingOptions<T>(Argument<T> argument)
    {
        argument.Validators.Add(r =>
        {
            if (r.Tokens.FirstOrDefault(t => t.Value is ['-', _, ..]) is { } option)
                r.AddError($"{CliApp.UnknownOption} '{option.Value}'");
        });
        return argument;
    }

    /// <summary>--format NAME, one of the formats that serve <paramref name="kind"/> (by default <paramref name="byDefault"/>, else text).</summary>
    public static Option<OutputFormat> Format(OutputKind kind, OutputFormat? byDefault = null)
    {
        var fallback = byDefault ?? OutputFormat.Text;
        return new("--format", "-f")
        {
            // The parser adds "[default: NAME]" itself.
            Description = "Output format: " + string.Join(", ", OutputFormats.For(kind).Select(f => f.Name + (f.Summary is { } summary ? $" ({summary})" : ""))) + ".",
            HelpName = string.Join("|", OutputFormats.For(kind).Select(f => f.Name)),
            CustomParser = result => ParseFormat(result, kind, fallback),
            DefaultValueFactory = _ => fallback,
        };
    }

    /// <summary>-o/--output FILE.</summary>
    public static Option<string?> OutputFile() => new("--output", "-o")
    {
        Description = "Write the output to FILE instead of standard output.",
        HelpName = "FILE",
    };

    /// <summary>--tid TID, repeatable: only these threads, filtered in the kernel.</summary>
    public static Option<int[]> Tids() => new("--tid") { Description = "Only these threads (repeatable; filtered in the kernel).", HelpName = "TID", Arity = ArgumentArity.OneOrMore };

    /// <summary>--duration SECONDS (-d, as py-spy spells it).</summary>
    public static Option<double?> Duration() => new("--duration", "-d") { Description = "Stop after SECONDS.", HelpName = "SECONDS" };

    /// <summary>--ring-buffer-mb's default.</summary>
    public const int DefaultRingBufferMb = 8;

    /// <summary>--ring-buffer-mb MIB: the kernel ring buffer size.</summary>
    public static Option<int> RingBufferMb() => new("--ring-buffer-mb") { Description = $"Kernel ring buffer size in MiB (a power of two, default {DefaultRingBufferMb}), shared by the CPUs' queues where trace uses them.", HelpName = "MIB", DefaultValueFactory = _ => DefaultRingBufferMb };

    /// <summary>The --tid values, or null for every thread.</summary>
    public static IReadOnlyList<int>? ReadTids(ParseResult result, Option<int[]> option) => result.GetValue(option) is { Length: > 0 } t ? t : null;

    /// <summary>The --duration as a time span (null: until stopped); <see cref="UsageException"/> unless positive.</summary>
    public static TimeSpan? ReadDuration(ParseResult result, Option<double?> option)
    {
        var seconds = result.GetValue(option);
        if (seconds is <= 0) throw new UsageException("--duration must be positive");
        return seconds is null ? null : TimeSpan.FromSeconds(seconds.Value);
    }

    /// <summary>The --ring-buffer-mb in bytes; <see cref="UsageException"/> unless a power of two from 1 to 1024.</summary>
    public static uint ReadRingBytes(ParseResult result, Option<int> option)
    {
        var mib = result.GetValue(option);
        if (mib <= 0 || (mib & (mib - 1)) != 0 || mib > 1024) throw new UsageException("--ring-buffer-mb must be a power of two from 1 to 1024");
        return (uint)mib << 20;
    }

    private static int[] ParsePids(ArgumentResult result)
    {
        var pids = new int[result.Tokens.Count];
        for (int i = 0; i < pids.Length; i++)
        {
            var text = result.Tokens[i].Value;
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out pids[i]) || pids[i] <= 0)
            {
                result.AddError($"invalid PID '{text}': expected a positive integer");
                return [];
            }
        }
        return pids;
    }

    private static OutputFormat ParseFormat(ArgumentResult result, OutputKind kind, OutputFormat fallback)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (OutputFormats.Find(text, kind) is { } format) return format;
        result.AddError($"invalid format '{text}': expected {OutputFormats.Choices(kind)}");
        return fallback;
    }
}

/// <summary>Which processes a command traces, as given on the command line.</summary>
internal abstract record TargetSelection
{
    /// <summary>-p PID [-p PID…].</summary>
    public sealed record Processes(IReadOnlyList<int> Pids) : TargetSelection;
    /// <summary>--all [PATH]; Path null = every Python with probes.</summary>
    public sealed record AllProcesses(string? Path) : TargetSelection;
    /// <summary>-- CMD ARGS…: start this command and trace it.</summary>
    public sealed record Spawn(IReadOnlyList<string> Argv) : TargetSelection;
}

/// <summary>
/// The words after the first standalone "--", split off before parsing. Commands such as trace take
/// positional PROBE words too, and a parser cannot tell those from the command's own words.
/// </summary>
internal static class CommandTail
{
    private static readonly AsyncLocal<string[]?> Tail = new();

    public static string[]? Current => Tail.Value;

    /// <summary>Returns the words before "--" and remembers the ones after it.</summary>
    public static string[] Split(string[] args)
    {
        var separator = Array.IndexOf(args, "--");
        if (separator < 0)
        {
            Tail.Value = null;
            return args;
        }
        Tail.Value = args[(separator + 1)..];
        return args[..separator];
    }
}

/// <summary>The target options of the tracing commands: exactly one of -p…, --all [PATH], -- CMD ARGS….</summary>
internal sealed class TargetOptions
{
    public Option<int[]> Pid { get; } = SharedOptions.Pid();
    public Option<string?> All { get; } = SharedOptions.All();
    public Argument<string[]> Command { get; } = SharedOptions.Command();

    public void AddTo(Command command)
    {
        command.Options.Add(Pid);
        command.Options.Add(All);
        command.Arguments.Add(Command);
    }

    /// <summary>The chosen target; <see cref="UsageException"/> when none or several kinds were given.</summary>
    public TargetSelection Read(ParseResult result)
    {
        var pids = result.GetValue(Pid) ?? [];
        bool all = result.GetResult(All) is not null;
        var loose = result.GetValue(Command) ?? [];
        // Words before "--" that no option took: a command to start only when nothing else names the target.
        if (loose.Length > 0 && (CommandTail.Current is not null || pids.Length > 0 || all))
            throw new UsageException($"unexpected argument '{loose[0]}' (a command to start goes after '--')");
        var argv = CommandTail.Current ?? loose;
        int kinds = (pids.Length > 0 ? 1 : 0) + (all ? 1 : 0) + (argv.Length > 0 ? 1 : 0);
        if (kinds == 0)
            throw new UsageException("no target: give -p PID, --all [PATH] or -- CMD ARGS...");
        if (kinds > 1)
            throw new UsageException("give only one kind of target: -p PID, --all [PATH] or -- CMD ARGS...");
        if (pids.Length > 0)
            return new TargetSelection.Processes(pids.Distinct().ToArray());
        if (all)
            return new TargetSelection.AllProcesses(result.GetValue(All));
        return new TargetSelection.Spawn(argv);
    }
}

/// <summary>--format (the formats that serve the command's kind of output) and -o FILE.</summary>
internal sealed class OutputOptions(OutputKind kind)
{
    public Option<OutputFormat> Format { get; } = SharedOptions.Format(kind);
    public Option<string?> File { get; } = SharedOptions.OutputFile();

    public void AddTo(Command command)
    {
        command.Options.Add(Format);
        command.Options.Add(File);
    }

    public OutputFormat ReadFormat(ParseResult result) => result.GetValue(Format) ?? OutputFormat.Text;

    /// <summary>Opens the destination: the -o file (created or truncated) or standard output.</summary>
    public EventBuffer Open(ParseResult result, TextWriter standardOutput) =>
        EventBuffer.Open(result.GetValue(File), standardOutput);
}
