using System.CommandLine;
using System.CommandLine.Parsing;
using System.IO.Enumeration;
using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Commands.Calls;

/// <summary>What the rows of calls/top are ordered by (largest first).</summary>
internal enum CallSort
{
    Count,
    Total,
    Mean,
    Max,
    Self,
}

/// <summary>Which rows of a snapshot are shown, in which order: the --function/--file globs, --sort and --top.</summary>
internal sealed record CallRowSelection(CallSort Sort, int? Top, string? FunctionGlob, string? FileGlob)
{
    public IReadOnlyList<FunctionStats> Apply(IReadOnlyList<FunctionStats> functions)
    {
        var rows = functions.Where(Matches).ToList();
        rows.Sort(Compare);
        if (Top is int top && rows.Count > top) rows.RemoveRange(top, rows.Count - top);
        return rows;
    }

    private bool Matches(FunctionStats f) =>
        (FunctionGlob is null || FileSystemName.MatchesSimpleExpression(FunctionGlob, f.Funcname, ignoreCase: false)) &&
        (FileGlob is null || FileSystemName.MatchesSimpleExpression(FileGlob, f.Filename, ignoreCase: false));

    /// <summary>Largest key first; rows without times (when sorting by a time) after the timed ones, by count.</summary>
    private int Compare(FunctionStats a, FunctionStats b)
    {
        if (Sort != CallSort.Count)
        {
            var ka = Key(a);
            var kb = Key(b);
            if (ka is null != kb is null) return ka is null ? 1 : -1;
            if (ka is not null && kb is not null && ka != kb) return kb.Value.CompareTo(ka.Value);
        }
        var c = b.Count.CompareTo(a.Count);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Funcname, b.Funcname);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Filename, b.Filename);
        return c != 0 ? c : (a.Lineno ?? 0).CompareTo(b.Lineno ?? 0);
    }

    private double? Key(FunctionStats f) => Sort switch
    {
        CallSort.Total => f.TotalNs,
        CallSort.Mean => f.MeanNs,
        CallSort.Max => f.MaxNs,
        CallSort.Self => f.SelfNs,
        _ => f.Count,
    };
}

/// <summary>The option definitions calls and top share, so spelling and checks stay identical.</summary>
internal static class CallOptions
{
    public static Option<CallSort?> Sort(CallSort defaultSort, bool allowSelf) => new("--sort")
    {
        Description = $"Order rows by count, total, mean, max{(allowSelf ? " or self" : "")} (largest first; default {defaultSort.ToString().ToLowerInvariant()}).",
        HelpName = allowSelf ? "count|total|mean|max|self" : "count|total|mean|max",
        CustomParser = r => ParseSort(r, defaultSort),
    };

    public static Option<int?> Top(string description) => new("--top")
    {
        Description = description,
        HelpName = "N",
    };

    public static Option<string?> Function() => new("--function") { Description = "Only functions whose name matches GLOB.", HelpName = "GLOB" };

    public static Option<string?> File() => new("--file") { Description = "Only functions whose file name matches GLOB.", HelpName = "GLOB" };

    public static Option<double?> Duration() => SharedOptions.Duration();

    /// <summary>--no-write: never set the eval-frame hook of a 3.11+ target (then USDT where it fires, or a clear refusal).</summary>
    public static Option<bool> NoWrite() => new("--no-write")
    {
        Description = "Never write into the target (calls on 3.11-3.14 need its eval-frame hook set; without it: USDT where it fires).",
    };

    public static Option<bool> NoEntryGate() => new("--no-entry-gate")
    {
        Description = "On Python 3.11, do not turn on function__entry: the target keeps full speed, calls are counted from returns and have no times.",
    };

    private static CallSort? ParseSort(ArgumentResult result, CallSort fallback)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (Enum.TryParse<CallSort>(text, ignoreCase: true, out var sort) && !int.TryParse(text, out _)) return sort;
        result.AddError($"invalid --sort '{text}': expected count, total, mean, max or self");
        return fallback;
    }

    /// <summary>Checks the shared values; <see cref="UsageException"/> for nonsense.</summary>
    public static void Validate(int? top, double? duration, double? interval)
    {
        if (top is <= 0) throw new UsageException("--top must be a positive number of rows");
        if (duration is <= 0) throw new UsageException("--duration must be positive");
        if (interval is <= 0) throw new UsageException("--interval must be positive");
    }
}
