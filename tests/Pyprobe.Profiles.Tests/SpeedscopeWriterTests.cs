using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;
using static Pyprobe.Profiles.Tests.Support.KnownProfiles;

namespace Pyprobe.Profiles.Tests;

public sealed class SpeedscopeWriterTests
{
    // What speedscope's file-format schema requires of a file with sampled profiles, restated as a JSON schema:
    // required $schema (that exact URL), shared.frames (each with a string name; file a string, line/col numbers),
    // profiles of type "sampled" with name, unit (one of six), startValue, endValue, samples (arrays of
    // numbers) and weights; optional name, activeProfileIndex, exporter.
    private const string RequiredShape = """
        {
          "$schema": "http://json-schema.org/draft-07/schema#",
          "type": "object",
          "required": ["$schema", "shared", "profiles"],
          "properties": {
            "$schema": { "type": "string", "const": "https://www.speedscope.app/file-format-schema.json" },
            "name": { "type": "string" },
            "exporter": { "type": "string" },
            "activeProfileIndex": { "type": "number" },
            "shared": {
              "type": "object",
              "required": ["frames"],
              "properties": {
                "frames": {
                  "type": "array",
                  "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                      "name": { "type": "string" },
                      "file": { "type": "string" },
                      "line": { "type": "number" },
                      "col": { "type": "number" }
                    }
                  }
                }
              }
            },
            "profiles": {
              "type": "array",
              "items": {
                "type": "object",
                "required": ["type", "name", "unit", "startValue", "endValue", "samples", "weights"],
                "properties": {
                  "type": { "type": "string", "const": "sampled" },
                  "name": { "type": "string" },
                  "unit": { "enum": ["none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"] },
                  "startValue": { "type": "number" },
                  "endValue": { "type": "number" },
                  "samples": { "type": "array", "items": { "type": "array", "items": { "type": "number" } } },
                  "weights": { "type": "array", "items": { "type": "number" } }
                }
              }
            }
          }
        }
        """;

    private static JsonNode Written(StackProfile profile) =>
        JsonNode.Parse(KnownProfiles.Write(new SpeedscopeWriter(), profile))!;

    internal static void AssertValid(JsonNode file, JsonSchema schema)
    {
        EvaluationResults results = schema.Evaluate(JsonSerializer.SerializeToElement(file), new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(results.IsValid, string.Join("; ", (results.Details ?? []).Where(d => d.Errors is not null)
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))));

        // What the schema cannot say: indexes point into the frames, one weight per sample, end ≥ start.
        int frameCount = file["shared"]!["frames"]!.AsArray().Count;
        foreach (JsonNode? p in file["profiles"]!.AsArray())
        {
            Assert.Equal(p!["samples"]!.AsArray().Count, p["weights"]!.AsArray().Count);
            Assert.All(p["samples"]!.AsArray(), s => Assert.All(s!.AsArray(), i => Assert.InRange((int)i!, 0, frameCount - 1)));
            Assert.True((double)p["endValue"]! >= (double)p["startValue"]!);
        }
    }

    [Fact]
    public void The_file_has_every_field_the_schema_requires()
    {
        AssertValid(Written(KnownProfiles.Simple()), JsonSchema.FromText(RequiredShape));
        AssertValid(Written(KnownProfiles.Threads()), JsonSchema.FromText(RequiredShape));
    }

    [Fact]
    public void The_required_shape_rejects_a_file_without_weights()
    {
        JsonNode file = Written(KnownProfiles.Simple());
        file["profiles"]![0]!.AsObject().Remove("weights");
        Assert.False(JsonSchema.FromText(RequiredShape).Evaluate(JsonSerializer.SerializeToElement(file)).IsValid);
    }

    [Fact]
    public void Stacks_and_weights_round_trip()
    {
        StackProfile profile = KnownProfiles.Simple();
        JsonNode file = Written(profile);

        Assert.Equal("https://www.speedscope.app/file-format-schema.json", (string?)file["$schema"]);
        Assert.Equal("pyprobe", (string?)file["exporter"]);
        Assert.Equal(0, (int)file["activeProfileIndex"]!);
        JsonArray frames = file["shared"]!["frames"]!.AsArray();
        JsonObject work13 = frames[profile.Frames.ToList().IndexOf(Work13)]!.AsObject();
        Assert.Equal(["name=work", "file=app.py", "line=13"], work13.Select(kv => $"{kv.Key}={kv.Value}"));
        JsonObject truncated = frames[profile.Frames.ToList().IndexOf(StackFrame.Truncated)]!.AsObject();
        Assert.Equal(["name=<truncated>"], truncated.Select(kv => $"{kv.Key}={kv.Value}"));

        JsonNode p = file["profiles"]!.AsArray().Single()!;
        Assert.Equal("sampled", (string?)p["type"]);
        Assert.Equal("pyprobe record pid 4242 (cpu, 100 Hz)", (string?)p["name"]);
        Assert.Equal("nanoseconds", (string?)p["unit"]);
        Assert.Equal(0, (long)p["startValue"]!);
        Assert.Equal(106 * 10_000_000L, (long)p["endValue"]!);

        // Read back: frames by index, weight / period = count; the same stacks as the model.
        var readBack = p["samples"]!.AsArray().Zip(p["weights"]!.AsArray(), (s, w) =>
        (
            Stack: string.Join(";", s!.AsArray().Select(i => Describe(frames[(int)i!]!))),
            Count: (long)w! / 10_000_000L
        )).OrderBy(x => x.Stack, StringComparer.Ordinal).ToList();
        var expected = profile.Stacks.Select(s => (Stack: string.Join(";", profile.FramesOf(s).Select(f => f.Label)), s.Count))
            .OrderBy(x => x.Stack, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, readBack);
    }

    [Fact]
    public void Threads_become_one_profile_each_without_their_root_frame()
    {
        JsonNode file = Written(KnownProfiles.Threads());
        JsonArray frames = file["shared"]!["frames"]!.AsArray();
        IEnumerable<string> profiles = file["profiles"]!.AsArray().Select(p =>
            $"{(string?)p!["name"]} end={(long)p["endValue"]!}: " + string.Join(" | ", p["samples"]!.AsArray().Zip(p["weights"]!.AsArray(),
                (s, w) => $"{string.Join(";", s!.AsArray().Select(i => Describe(frames[(int)i!]!)))} {(long)w! / 10_000_000L}")));

        Assert.Equal(
            [
                "thread 4242 (MainThread) end=400000000: <module> (app.py:30);main (app.py:25);work (app.py:12) 30 | <module> (app.py:30);main (app.py:25) 10",
                "thread 4250 (worker-1) end=70000000: Helper.run (lib.py:7) 7",
            ],
            profiles);
    }

    private static string Describe(JsonNode frame) =>
        frame["file"] is null ? (string)frame["name"]! : $"{(string)frame["name"]!} ({(string)frame["file"]!}:{(int)frame["line"]!})";
}
