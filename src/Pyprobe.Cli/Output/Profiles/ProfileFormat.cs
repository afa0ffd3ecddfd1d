namespace Pyprobe.Cli.Output.Profiles;

/// <summary>The files <c>pyprobe record --format</c> writes.</summary>
internal enum ProfileFormat
{
    /// <summary>A self-contained interactive SVG flame graph (the default).</summary>
    Flamegraph,
    /// <summary>speedscope's JSON file format.</summary>
    Speedscope,
    /// <summary>gzipped pprof profile.proto.</summary>
    Pprof,
    /// <summary>One line per stack, the input of flamegraph.pl and inferno.</summary>
    Collapsed,
}
