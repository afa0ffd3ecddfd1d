using Pyprobe.Python.Profiling;

namespace Pyprobe.Profiles.Tests.Support;

/// <summary>Profiles with hand-counted stacks, the known answers of the format tests.</summary>
internal static class KnownProfiles
{
    public static readonly StackFrame Module = StackFrame.Python("<module>", "app.py", 30, firstLine: 1);
    public static readonly StackFrame Main = StackFrame.Python("main", "app.py", 25, firstLine: 20);
    public static readonly StackFrame Work12 = StackFrame.Python("work", "app.py", 12, firstLine: 10);
    public static readonly StackFrame Work13 = StackFrame.Python("work", "app.py", 13, firstLine: 10);
    public static readonly StackFrame Helper = StackFrame.Python("Helper.run", "lib.py", 7, firstLine: 5);

    public static readonly DateTimeOffset Start = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static ProfileMetadata Metadata(ProfileMode mode = ProfileMode.Cpu) =>
        new([4242], "3.12.1", 100, mode, Start, TimeSpan.FromSeconds(5), new SampleTotals(120, 13, 1, 1));

    /// <summary>
    /// 106 samples in 7 stacks; the merged tree has 10 nodes (with "all"):
    /// all 106 ─ &lt;module&gt; 105 ─ Helper.run 5
    ///                       └ main 100 ─ &lt;unknown&gt; 2, Helper.run 25, work:12 50, work:13 20 (self 3)
    ///        └ &lt;truncated&gt; 1 ─ work:12 1
    /// </summary>
    public static StackProfile Simple(ProfileMode mode = ProfileMode.Cpu)
    {
        var aggregator = new StackAggregator();
        // Added in pieces and out of order: the aggregator must merge them.
        aggregator.Add([Module, Main, Work12], 30);
        aggregator.Add([Module, Main, Work13], 20);
        aggregator.Add([Module, Main, Helper], 25);
        aggregator.Add([Module, Helper], 5);
        aggregator.Add([Module, Main, Work12], 20);
        aggregator.Add([Module, Main], 3);
        aggregator.Add([Module, Main, StackFrame.Unknown], 2);
        aggregator.Add([StackFrame.Truncated, Work12], 1);
        return aggregator.Build(Metadata(mode));
    }

    public static readonly StackFrame MainThread = StackFrame.ThreadRoot(4242, "MainThread");
    public static readonly StackFrame Worker = StackFrame.ThreadRoot(4250, "worker-1");

    /// <summary>Two threads (--threads): MainThread 40 (main→work:12 30, main 10), worker-1 7 (Helper.run).</summary>
    public static StackProfile Threads()
    {
        var aggregator = new StackAggregator();
        aggregator.Add([MainThread, Module, Main, Work12], 30);
        aggregator.Add([Worker, Helper], 7);
        aggregator.Add([MainThread, Module, Main], 10);
        return aggregator.Build(Metadata());
    }

    public static readonly StackFrame Compress = StackFrame.Python("compress", "app.py", 40, firstLine: 39);
    public static readonly StackFrame ZlibCompress = StackFrame.Native("zlib_compress", "zlib.cpython-312-x86_64-linux-gnu.so");
    public static readonly StackFrame Deflate = StackFrame.Native("deflate", "libz.so.1");
    public static readonly StackFrame LongestMatch = StackFrame.Native("libz.so.1+0x5d80", "libz.so.1");

    /// <summary>
    /// record --native: 60 samples, &lt;module&gt; 60 ─ compress 50 (self 10) ─ zlib_compress 40 ─ deflate 40 (self 15) ─
    /// libz.so.1+0x5d80 25; main 10.
    /// </summary>
    public static StackProfile Native()
    {
        var aggregator = new StackAggregator();
        aggregator.Add([Module, Compress, ZlibCompress, Deflate, LongestMatch], 25);
        aggregator.Add([Module, Compress, ZlibCompress, Deflate], 15);
        aggregator.Add([Module, Compress], 10);
        aggregator.Add([Module, Main], 10);
        return aggregator.Build(Metadata());
    }

    public static byte[] Write(Pyprobe.Cli.Output.Profiles.IProfileWriter writer, StackProfile profile)
    {
        using var stream = new MemoryStream();
        writer.Write(profile, stream);
        return stream.ToArray();
    }
}
