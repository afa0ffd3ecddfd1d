namespace Pyprobe.Python.Runtime;

/// <summary>Which USDT probes fire on which CPython 3.X (facts in shared/notes/cpython.md §1.2).</summary>
internal static class ProbeAvailability
{
    public static ProbeSupport Support(string probe, int major, int minor)
    {
        if (PythonProbeCatalog.IsNeverEmitted(probe)) return ProbeSupport.No("declared in pydtrace.d but never emitted by CPython");
        if (major != 3) return ProbeSupport.No($"pyprobe knows CPython 3 only, this is {major}.{minor}");
        return probe switch
        {
            "function__entry" => minor switch
            {
                <= 10 => ProbeSupport.Yes(),
                11 => ProbeSupport.Partly("3.11 emits entries only while tracing is on; pyprobe raises the 'line' semaphore to turn it on (about 10x slower on call-heavy code)"),
                <= 14 => ProbeSupport.No($"removed in 3.12 (PEP 669), restored in 3.15"),
                _ => ProbeSupport.Partly("restored in 3.15: generator creation adds an entry without a return, throw() has no entry, and the JIT (when on) hides most calls"),
            },
            "function__return" => minor switch
            {
                <= 11 => ProbeSupport.Yes(),
                <= 14 => ProbeSupport.No("removed in 3.12 (PEP 669), restored in 3.15"),
                _ => ProbeSupport.Partly("restored in 3.15: the JIT (when on) hides most returns"),
            },
            "line" => minor switch
            {
                <= 11 => ProbeSupport.Yes(),
                _ => ProbeSupport.No("removed in 3.12 (PEP 669) and not restored"),
            },
            "audit" => minor >= 8 ? ProbeSupport.Yes() : ProbeSupport.No("added in 3.8"),
            "import__find__load__start" or "import__find__load__done" => minor >= 7 ? ProbeSupport.Yes("only for modules not yet in sys.modules") : ProbeSupport.No("added in 3.7"),
            "gc__start" or "gc__done" => ProbeSupport.Yes(),
            _ => ProbeSupport.No("not a CPython probe"),
        };
    }
}
