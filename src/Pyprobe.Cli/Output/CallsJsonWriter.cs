using System.Buffers;
using System.Text;
using System.Text.Json;
using Pyprobe.Python.Analysis;

namespace Pyprobe.Cli.Output;

/// <summary>
/// calls --format json: one array per report, on one line, of objects
/// <c>{"filename","funcname","lineno","count","total_ns","mean_ns","min_ns","max_ns","p50_ns","p90_ns","p99_ns"}</c>.
/// lineno is null when only returns were seen. The time keys are left out when no call of the function has a
/// time; "timed_count" appears only when some but not all calls have one (the times then describe those);
/// "self_ns" only with --self; "pid" only when several processes are traced. Durations are integer nanoseconds.
/// </summary>
internal static class CallsJsonWriter
{
    private static readonly JsonWriterOptions Options = new() { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <param name="countsOnly">calls --count: no time keys, whatever a target measured (every row has the same shape).</param>
    public static string Render(IReadOnlyList<FunctionStats> rows, bool showSelf, bool showPid, bool countsOnly)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartArray();
            foreach (var f in rows)
            {
                json.WriteStartObject();
                if (showPid) json.WriteNumber("pid", f.Pid);
                json.WriteString("filename", f.Filename);
                json.WriteString("funcname", f.Funcname);
                if (f.Lineno is int line) json.WriteNumber("lineno", line);
                else json.WriteNull("lineno");
                json.WriteNumber("count", f.Count);
                if (f.HasTimes && !countsOnly)
                {
                    if (f.TimedCount != f.Count) json.WriteNumber("timed_count", f.TimedCount);
                    json.WriteNumber("total_ns", f.TotalNs!.Value);
                    if (showSelf) json.WriteNumber("self_ns", f.SelfNs!.Value);
                    json.WriteNumber("mean_ns", (ulong)Math.Round(f.MeanNs!.Value));
                    json.WriteNumber("min_ns", f.MinNs!.Value);
                    json.WriteNumber("max_ns", f.MaxNs!.Value);
                    json.WriteNumber("p50_ns", f.P50Ns!.Value);
                    json.WriteNumber("p90_ns", f.P90Ns!.Value);
                    json.WriteNumber("p99_ns", f.P99Ns!.Value);
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }
}
