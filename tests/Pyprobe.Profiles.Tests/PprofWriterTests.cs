using System.IO.Compression;
using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Pprof;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Profiles.Tests;

public sealed class PprofWriterTests
{
    internal static Profile Decode(byte[] file)
    {
        Assert.Equal([0x1f, 0x8b], file[..2]); // gzip
        using var gzip = new GZipStream(new MemoryStream(file), CompressionMode.Decompress);
        return Profile.Parser.ParseFrom(gzip);
    }

    private static Profile Written(StackProfile profile) => Decode(KnownProfiles.Write(new PprofWriter(), profile));

    [Fact]
    public void Header_sample_types_period_and_times()
    {
        Profile p = Written(KnownProfiles.Simple());
        string S(long i) => p.StringTable[(int)i];

        Assert.Equal("", p.StringTable[0]);
        Assert.Equal(["samples/count", "cpu/nanoseconds"], p.SampleType.Select(t => $"{S(t.Type)}/{S(t.Unit)}"));
        Assert.Equal("cpu/nanoseconds", $"{S(p.PeriodType.Type)}/{S(p.PeriodType.Unit)}");
        Assert.Equal(10_000_000, p.Period);
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000, p.TimeNanos);
        Assert.Equal(5_000_000_000, p.DurationNanos);
        Assert.Equal(
            ["pyprobe record: pid 4242, CPython 3.12.1, cpu time, 100 Hz",
             "samples taken 120, with no Python frame 13, truncated 1, lost 1"],
            p.Comment.Select(S));
    }

    [Fact]
    public void Wall_mode_names_its_clock()
    {
        Profile p = Written(KnownProfiles.Simple(ProfileMode.Wall));
        Assert.Equal("wall", p.StringTable[(int)p.SampleType[1].Type]);
        Assert.Equal("wall", p.StringTable[(int)p.PeriodType.Type]);
    }

    [Fact]
    public void Functions_locations_and_lines()
    {
        Profile p = Written(KnownProfiles.Simple());
        string S(long i) => p.StringTable[(int)i];

        // work at lines 12 and 13 is one function with two locations; names pprof would mangle get look-alike
        // brackets, the exact name is the system name.
        Assert.Equal(
            ["\u2039module\u203a|<module>|app.py|1", "main|main|app.py|20", "work|work|app.py|10", "Helper.run|Helper.run|lib.py|5",
             "\u2039unknown [code object freed]\u203a|<unknown (code object freed)>||0", "\u2039truncated\u203a|<truncated>||0"],
            p.Function.OrderBy(f => f.Id).Select(f => $"{S(f.Name)}|{S(f.SystemName)}|{S(f.Filename)}|{f.StartLine}"));
        Assert.Equal(p.Function.Count, p.Function.Select(f => f.Id).Distinct().Count());
        Assert.Equal(7, p.Location.Count);
        Assert.All(p.Location, l => Assert.Single(l.Line));
        Dictionary<ulong, Function> functions = p.Function.ToDictionary(f => f.Id);
        Assert.Equal(
            ["<module>:30", "main:25", "work:12", "work:13", "Helper.run:7", "<unknown (code object freed)>:0", "<truncated>:0"],
            p.Location.OrderBy(l => l.Id).Select(l => $"{S(functions[l.Line[0].FunctionId].SystemName)}:{l.Line[0].Line_}"));
    }

    [Fact]
    public void Samples_list_their_locations_leaf_first_with_count_and_time()
    {
        StackProfile profile = KnownProfiles.Simple();
        Profile p = Written(profile);
        string S(long i) => p.StringTable[(int)i];
        Dictionary<ulong, Location> locations = p.Location.ToDictionary(l => l.Id);
        Dictionary<ulong, Function> functions = p.Function.ToDictionary(f => f.Id);
        string Label(ulong locationId)
        {
            Line line = locations[locationId].Line[0];
            Function f = functions[line.FunctionId];
            return S(f.Filename).Length == 0 ? S(f.SystemName) : $"{S(f.SystemName)} ({S(f.Filename)}:{line.Line_})";
        }

        var decoded = p.Sample
            .Select(s => $"{string.Join(";", s.LocationId.Reverse().Select(Label))} {s.Value[0]} {s.Value[1]}")
            .Order(StringComparer.Ordinal);
        var expected = profile.Stacks
            .Select(s => $"{string.Join(";", profile.FramesOf(s).Select(f => f.Label))} {s.Count} {s.Count * 10_000_000}")
            .Order(StringComparer.Ordinal);
        Assert.Equal(expected, decoded);
        Assert.Equal(106, p.Sample.Sum(s => s.Value[0]));
        Assert.Equal("work (app.py:12)", Label(p.Sample[0].LocationId[0])); // first stack: leaf first
    }

    [Fact]
    public void An_empty_recording_is_still_a_valid_profile()
    {
        Profile p = Written(new StackAggregator().Build(KnownProfiles.Metadata()));
        Assert.Empty(p.Sample);
        Assert.Equal(2, p.SampleType.Count);
        Assert.Equal(10_000_000, p.Period);
    }
}
