using System.CommandLine.Parsing;

namespace Pyprobe.Cli.Commands.Calls;

/// <summary>
/// The options calls and top share — target, output, --sort, --top, --count, --function, --file, --duration,
/// --no-entry-gate, --no-write — defined and checked once. Each command places them in its help among its own.
/// </summary>
internal sealed class CallOptions(CallSort defaultSort, string topDescription)
{
    private readonly CallSort _defaultSort = defaultSort;

    public TargetOptions Target { get; } = new();

    public OutputOptions Output { get; } = new(OutputKind.CallStatistics);

    public Option<CallSort?> Sort { get; } = new("--sort")
    {
        Description = $"Order rows by count, total, mean, max or self (largest first; default {defaultSort.ToString().ToLowerInvariant()}).",
        HelpName = "count|total|mean|max|self",
        CustomParser = r => ParseSort(r, defaultSort),
    };

    public Option<int?> Top { get; } = new("--top") { Description = topDescription, HelpName = "N" };

    /// <summary>--count: calls counted alone (one probe a call, no clock), rows without times.</summary>
    public Option<bool> Count { get; } = new("--count")
    {
        Description = "Only count calls: one probe a call instead of two and no clock (at the return with USDT probes, at _PyEval_EvalFrameDefault's entry without them), about half the cost of timing or less; on 3.11 no entry gate. Rows have no times (nor, from USDT, a first line); the default sort is by count.",
    };

    public Option<string?> Function { get; } = new("--function") { Description = "Only functions whose name matches GLOB.", HelpName = "GLOB" };

    public Option<string?> File { get; } = new("--file") { Description = "Only functions whose file name matches GLOB.", HelpName = "GLOB" };

    public Option<double?> Duration { get; } = SharedOptions.Duration();

    public Option<bool> NoEntryGate { get; } = new("--no-entry-gate")
    {
        Description = "On Python 3.11, do not turn on function__entry: the target keeps full speed, calls are counted from returns and have no times.",
    };

    /// <summary>--no-write: never set the eval-frame hook of a 3.11+ target (then USDT where it fires, or a clear refusal).</summary>
    public Option<bool> NoWrite { get; } = new("--no-write")
    {
        Description = "Never write into the target (calls on 3.11-3.14 need its eval-frame hook set; without it: USDT where it fires).",
    };

    /// <summary>
    /// The target and the shared values, checked together with the command's own <paramref name="interval"/>;
    /// <see cref="UsageException"/> for nonsense.
    /// </summary>
    public CallSettings Read(ParseResult result, double? interval)
    {
        var selection = Target.Read(result);
        var rows = result.GetValue(Top);
        var seconds = result.GetValue(Duration);
        if (rows is <= 0) throw new UsageException("--top must be a positive number of rows");
        if (seconds is <= 0) throw new UsageException("--duration must be positive");
        if (interval is <= 0) throw new UsageException("--interval must be positive");
        var counting = result.GetValue(Count);
        var sort = result.GetValue(Sort);
        // Counts alone have nothing but counts to order by.
        if (counting && sort is { } timeSort && timeSort != CallSort.Count)
            throw new UsageException($"--sort {timeSort.ToString().ToLowerInvariant()} needs times, which --count does not take");
        return new CallSettings(
            selection,
            new CallRowSelection(counting ? CallSort.Count : sort ?? _defaultSort, rows, result.GetValue(Function), result.GetValue(File)),
            seconds is null ? null : TimeSpan.FromSeconds(seconds.Value),
            EntryGate: !result.GetValue(NoEntryGate),
            AllowWrite: !result.GetValue(NoWrite),
            Timed: !counting);
    }

    private static CallSort? ParseSort(ArgumentResult result, CallSort fallback)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (Enum.TryParse<CallSort>(text, ignoreCase: true, out var sort) && !int.TryParse(text, out _)) return sort;
        result.AddError($"invalid --sort '{text}': expected count, total, mean, max or self");
        return fallback;
    }
}

/// <summary>The values of <see cref="CallOptions"/>.</summary>
/// <param name="Rows">Which rows to show; its Top is --top (null: the command decides).</param>
/// <param name="Duration">--duration (null: until stopped).</param>
/// <param name="Timed">Calls are timed (false: <c>calls --count</c>, counted alone).</param>
internal sealed record CallSettings(TargetSelection Selection, CallRowSelection Rows, TimeSpan? Duration, bool EntryGate, bool AllowWrite, bool Timed = true);
