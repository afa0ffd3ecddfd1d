using Pyprobe.Cli.Commands.Trace;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// A trace command line starts making its record map before it is parsed (<see cref="RecordMapAhead"/>): a command that
/// fails before the run takes the map must not keep it (8 MiB of kernel memory and its mappings), in this process
/// either, which runs many commands. (A run that takes it closes it on every path, as it did the map it made itself.)
/// </summary>
public class RecordMapAheadTests
{
    [Fact]
    public void AFailedTraceKeepsNoMapMadeAhead()
    {
        Assert.True(Environment.IsPrivilegedProcess || Environment.GetEnvironmentVariable("CI") != "true", "needs root");
        if (!Environment.IsPrivilegedProcess) return;
        var before = MmapableArrays();
        var mappingsBefore = BpfMapMappings();
        var stderr = new StringWriter();
        // A bad option value: the command fails after the map was started, before the run could take it.
        var code = CliApp.Run(["trace", "--duration", "0", "-p", "999999999"], TextWriter.Null, stderr);
        Assert.NotEqual(0, code);
        Assert.Contains("--duration must be positive", stderr.ToString());
        // Closed, not merely not made yet: closing waits for the thread that makes it.
        Assert.False(RecordMapAhead.Holds);
        Assert.Equal(before, MmapableArrays());
        Assert.Equal(mappingsBefore, BpfMapMappings());
    }

    /// <summary>The mmapable BPF arrays this process holds an fd of.</summary>
    private static int MmapableArrays()
    {
        var count = 0;
        foreach (var fdinfo in Directory.GetFiles("/proc/self/fdinfo"))
        {
            string text;
            try { text = File.ReadAllText(fdinfo); } catch (IOException) { continue; }
            var flags = text.Split('\n').FirstOrDefault(l => l.StartsWith("map_flags:", StringComparison.Ordinal));
            if (text.Contains("map_type:\t2\n") && flags is not null && (Convert.ToInt64(flags.Split(':')[1].Trim(), 16) & 0x400) != 0) count++;
        }
        return count;
    }

    /// <summary>This process's mappings of BPF maps.</summary>
    private static int BpfMapMappings() => File.ReadLines("/proc/self/maps").Count(l => l.Contains("anon_inode:bpf-map", StringComparison.Ordinal));
}
