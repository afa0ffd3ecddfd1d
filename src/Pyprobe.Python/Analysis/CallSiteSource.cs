namespace Pyprobe.Python.Analysis;

/// <summary>Where a call-statistics program finds the function it counts.</summary>
public abstract record CallSiteSource
{
    private CallSiteSource() { }

    /// <summary>
    /// The USDT function__entry/function__return arguments (filename, funcname, line). The entry's line is where the
    /// activation starts: a generator's resume line on 3.9–3.10, 0 or -1 for module and class code on 3.11 and 3.15;
    /// with <paramref name="FrameCode"/> an entry takes the first line of the entered frame's code object instead.
    /// </summary>
    public sealed record Usdt(IReadOnlyList<UsdtArgument> Arguments, ulong SiteAddress = 0, Func<string, ulong>? ResolveSymbol = null, EntryFrameCode? FrameCode = null) : CallSiteSource;

    /// <summary>
    /// _PyEval_EvalFrameDefault: the entry reads the frame's code object (filename, qualified name, co_firstlineno), a
    /// ret pops it from the <see cref="EvalFrame.ActivationStack"/>, so both key a function by its code object. With
    /// <paramref name="InlineInit"/>, the sites of 3.13's inline <c>__init__</c> instead (<see cref="EvalFrame.InlineInitSites"/>).
    /// </summary>
    public sealed record EvalFrame(CPythonFacts Facts, RuntimeLayout Layout, bool InlineInit = false) : CallSiteSource;
}
