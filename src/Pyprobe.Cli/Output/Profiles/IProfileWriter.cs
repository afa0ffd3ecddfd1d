using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>Writes a finished recording in one file format.</summary>
internal interface IProfileWriter
{
    /// <summary>The file name extension, without the dot ("svg", "pb.gz"…).</summary>
    string Extension { get; }

    /// <summary>Writes the whole file to <paramref name="output"/> (left open).</summary>
    void Write(StackProfile profile, Stream output);
}
