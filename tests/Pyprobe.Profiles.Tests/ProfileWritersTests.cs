using Pyprobe.Cli.Output.Profiles;

namespace Pyprobe.Profiles.Tests;

public sealed class ProfileWritersTests
{
    [Theory]
    [InlineData("Flamegraph", typeof(FlameGraphWriter), "pyprobe-4242-20260102-030405.svg")]
    [InlineData("Speedscope", typeof(SpeedscopeWriter), "pyprobe-4242-20260102-030405.speedscope.json")]
    [InlineData("Pprof", typeof(PprofWriter), "pyprobe-4242-20260102-030405.pb.gz")]
    [InlineData("Collapsed", typeof(CollapsedWriter), "pyprobe-4242-20260102-030405.folded")]
    public void Each_format_has_its_writer_and_default_file_name(string formatName, Type writer, string name)
    {
        ProfileFormat format = Enum.Parse<ProfileFormat>(formatName);
        Assert.IsType(writer, ProfileWriters.For(format));
        Assert.Equal(name, ProfileWriters.DefaultFileName(4242, new DateTime(2026, 1, 2, 3, 4, 5), format));
    }
}
