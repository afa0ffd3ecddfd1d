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
