using System.Text.Json.Serialization;

namespace Pyprobe.Cli.Output;

/// <summary>
/// `pyprobe dump --format json`: {"pid","version","threads":[{"tid","name","holds_gil","running","frames":[{"funcname","filename","lineno"}]}]};
/// with --locals each Python frame has "locals":[{"name","value","arg"}] (arg: a parameter of the function); with --native the document has "paused_ms" (how long
/// the process was held still) and the C frames are among the others with "native":true, the function's symbol as funcname and
/// the file's name (libz.so.1) as filename; a thread the interpreter does not know (a C library's worker) comes after the
/// Python ones with "c_only":true and its C frames alone. With --tasks the document has "tasks":[{"id","name","tid","state","waits_for","waits_on","frames"}] (with --locals, frames have "locals").
/// </summary>
internal sealed record DumpDocument(int Pid, string Version, IReadOnlyList<DumpThread> Threads,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? PausedMs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<DumpTask>? Tasks = null);

/// <param name="Id">The task's id() (its address), as "0x…".</param>
/// <param name="Tid">The thread running the task's event loop; left out when its loop is not running.</param>
/// <param name="State">"waiting" (in an await), "running" (its frames are its thread's) or "not_started".</param>
/// <param name="WaitsFor">The ids of the tasks it waits for (awaited directly, a gather's children, from 3.14 a TaskGroup's).</param>
/// <param name="WaitsOn">What else it waits on: "Future", or the awaited object's type; null when it waits for tasks.</param>
/// <param name="Frames">Its coroutines' frames, innermost first.</param>
internal sealed record DumpTask(string Id, string Name, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Tid, string State, IReadOnlyList<string> WaitsFor, string? WaitsOn, IReadOnlyList<DumpFrame> Frames);

/// <param name="HoldsGil">true/false where the version tells (GIL holder ≤3.11, thread-local state 3.12+), else null.</param>
/// <param name="Running">The kernel's state R (on a CPU or waiting for one), false when asleep, null when unknown.</param>
internal sealed record DumpThread(int Tid, string Name, bool? HoldsGil, bool? Running, IReadOnlyList<DumpFrame> Frames,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool COnly);

internal sealed record DumpFrame(string Funcname, string Filename, int Lineno,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Native,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<DumpLocal>? Locals);

/// <param name="Arg">Whether the variable is one of the function's parameters (positional, keyword-only, *args, **kwargs).</param>
internal sealed record DumpLocal(string Name, string Value, bool Arg);

/// <summary>The document as one line of JSON, with strings escaped only where JSON needs it (<see cref="RelaxedJson"/>).</summary>
internal static class DumpJson
{
    public static string Serialize(DumpDocument document) => RelaxedJson.Serialize(document, DumpJsonContext.Default.DumpDocument);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(DumpDocument))]
internal sealed partial class DumpJsonContext : JsonSerializerContext;
