using Pyprobe.Cli.Output.Formats;
using Pyprobe.Cli.Output.Profiles;

namespace Pyprobe.Profiles.Tests;

public sealed class ProfileWritersTests
{
    [Theory]
    [InlineData("flamegraph", typeof(FlameGraphWriter), "pyprobe-4242-20260102-030405.svg")]
    [InlineData("speedscope", typeof(SpeedscopeWriter), "pyprobe-4242-20260102-030405.speedscope.json")]
    [InlineData("pprof", typeof(PprofWriter), "pyprobe-4242-20260102-030405.pb.gz")]
    [InlineData("collapsed", typeof(CollapsedWriter), "pyprobe-4242-20260102-030405.folded")]
    public void Each_format_has_its_writer_and_default_file_name(string formatName, Type writer, string name)
    {
        OutputFormat format = OutputFormats.Find(formatName, OutputKind.Profile)!;
        Assert.IsType(writer, ProfileWriters.For(format));
        Assert.Equal(name, ProfileWriters.DefaultFileName(4242, new DateTime(2026, 1, 2, 3, 4, 5), format));
    }

    [Fact]
    public void Record_offers_the_profile_formats_and_only_those()
    {
        Assert.Equal(["flamegraph", "speedscope", "pprof", "collapsed"], OutputFormats.For(OutputKind.Profile).Select(f => f.Name));
        Assert.Equal("flamegraph, speedscope, pprof or collapsed", OutputFormats.Choices(OutputKind.Profile));
        Assert.Null(OutputFormats.Find("text", OutputKind.Profile));
    }
}
