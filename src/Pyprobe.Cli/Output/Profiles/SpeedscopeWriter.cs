using System.Text.Json;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// speedscope's JSON file format. One "sampled" profile, or with <c>--threads</c> one per thread (named
/// after the thread root frame, which is then left out of the stacks). Each distinct stack is one sample whose
/// weight is its sample count times the sampling period, in nanoseconds.
/// </summary>
internal sealed class SpeedscopeWriter : IProfileWriter
{
    /// <summary>record --format speedscope.</summary>
    public static readonly OutputFormat Format = new()
    {
        Name = "speedscope",
        Noun = "speedscope profile",
        Profile = () => new SpeedscopeWriter(),
    };

    public string Extension => "speedscope.json";

    public void Write(StackProfile profile, Stream output) =>
        JsonSerializer.Serialize(output, Build(profile), SpeedscopeJsonContext.Default.SpeedscopeDocument);

    public static SpeedscopeDocument Build(StackProfile profile)
    {
        long period = profile.Metadata.PeriodNanos;
        string unit = period > 0 ? "nanoseconds" : "none";
        long weightPerSample = period > 0 ? period : 1;
        string name = RecordingName(profile.Metadata);

        SpeedscopeFrame[] frames = [.. profile.Frames.Select(f => f.Kind switch
        {
            FrameKind.Python => new SpeedscopeFrame(f.Function, f.File, f.Line),
            FrameKind.Native => new SpeedscopeFrame(f.Function, f.File, null),
            _ => new SpeedscopeFrame(f.Function, null, null),
        })];

        // Stacks under a thread root go to that thread's profile; others (no --threads) to one unnamed group.
        var groups = new Dictionary<int, (List<int[]> Samples, List<long> Weights)>();
        foreach (StackCount stack in profile.Stacks)
        {
            if (stack.Count == 0)
                continue;
            bool threaded = stack.FrameIds.Count > 0 && profile.Frames[stack.FrameIds[0]].Kind == FrameKind.ThreadRoot;
            int key = threaded ? stack.FrameIds[0] : -1;
            if (!groups.TryGetValue(key, out var group))
                groups.Add(key, group = ([], []));
            group.Samples.Add([.. stack.FrameIds.Skip(threaded ? 1 : 0)]);
            group.Weights.Add(stack.Count * weightPerSample);
        }

        List<SpeedscopeProfile> profiles = [.. groups
            .OrderBy(g => g.Key < 0 ? "" : profile.Frames[g.Key].Label, StringComparer.Ordinal)
            .Select(g => new SpeedscopeProfile(
                "sampled",
                g.Key < 0 ? name : profile.Frames[g.Key].Label,
                unit,
                0,
                g.Value.Weights.Sum(),
                g.Value.Samples,
                g.Value.Weights))];
        if (profiles.Count == 0)
            profiles.Add(new SpeedscopeProfile("sampled", name, unit, 0, 0, [], []));

        return new SpeedscopeDocument(SpeedscopeDocument.SchemaUrl, new SpeedscopeShared(frames), profiles, name, 0, "pyprobe");
    }

    private static string RecordingName(ProfileMetadata m)
    {
        string pids = m.Pids.Count == 1 ? $"pid {m.Pids[0]}" : $"pids {string.Join(",", m.Pids)}";
        string mode = m.Mode == ProfileMode.Wall ? "wall" : "cpu";
        return string.Create(CultureInfo.InvariantCulture, $"pyprobe record {pids} ({mode}, {m.SampleRateHz} Hz)");
    }
}
