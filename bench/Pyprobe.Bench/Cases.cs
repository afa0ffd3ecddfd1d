using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pyprobe.Bench;

internal enum Tool { None, Bare, BareEntryAndReturn, BpftraceCount, BpftracePrintf, PyprobeTrace, PyprobeTraceRing, PyprobeTraceHighPriority, PyprobeTraceNormalPriority, PyprobeTraceRealtime, PyprobeCalls, PyprobeCallsCount, BpftraceCountPerFunction }

/// <param name="Binary">the bench's private copy of the interpreter (so system-wide attaches see only the bench's processes)</param>
/// <param name="Original">the cached Debian binary it was copied from</param>
internal sealed record Py(string Version, string FullVersion, string Binary, string Original, IReadOnlyList<string> Command, IReadOnlyDictionary<string, string> Env);

/// <summary>One run of the workload under one tool.</summary>
internal sealed record Run(Tool Tool, double NsPerCall, long Calls, long? RawSeen, long? ToolLost, long? Delivered, string? Note)
{
    /// <summary>CPU seconds the workload's processes used during their calls (user, kernel: traps and BPF included).</summary>
    public (double User, double Sys)? ProgramsCpu { get; init; }

    /// <summary>CPU seconds the tool's process used from its start until the workload had ended and it was told to stop.</summary>
    public (double User, double Sys)? ToolCpu { get; init; }

    /// <summary>How busy the machine's CPUs were (every process on it) from the release of the workload to its end, 0-1 (/proc/stat).</summary>
    public double? MachineBusy { get; init; }

    /// <summary>Seconds from the first worker's start to the last one's end.</summary>
    public double Wall { get; init; }

    /// <summary>Events of leaf() the tool saw (for bpftrace count: all function entries minus the workload's few others).</summary>
    public long? Seen { get; set; } = RawSeen;
    public long? Lost => Seen is null ? null : Calls - Seen;
    public double Rate { get; init; }
}

internal static partial class Cases
{
    public static string Label(Tool tool) => tool switch
    {
        Tool.None => "no tracing",
        Tool.Bare => "empty BPF program (bare uprobe)",
        Tool.BareEntryAndReturn => "empty BPF program on function__entry + function__return (calls' two sites)",
        Tool.BpftraceCount => "bpftrace `@ = count()`",
        Tool.BpftracePrintf => "bpftrace printf file/function/line (seed one-liner, system-wide)",
        Tool.PyprobeTrace => "pyprobe trace -o FILE",
        Tool.PyprobeTraceHighPriority => "pyprobe trace -o FILE --priority high",
        Tool.PyprobeTraceRing => "pyprobe trace -o FILE through the ring buffer (PYPROBE_EVENT_RING=1: as before the queue per CPU)",
        Tool.PyprobeTraceNormalPriority => "pyprobe trace -o FILE --priority normal",
        Tool.PyprobeTraceRealtime => "pyprobe trace -o FILE --priority realtime",
        Tool.PyprobeCalls => "pyprobe calls",
        Tool.PyprobeCallsCount => "pyprobe calls --count (function__return alone, no clock)",
        Tool.BpftraceCountPerFunction => "bpftrace `@[str(arg0), str(arg1)] = count()` on function__return (what calls --count gives)",
        _ => tool.ToString(),
    };

    public static string CountScript(string binary, bool perPid) =>
        $"usdt:{binary}:python:function__entry {{ {(perPid ? "@[pid]" : "@")} = count(); }}";

    /// <summary>Counts per function as calls --count does (its site, file and function name), with bpftrace's own strings (64 bytes at most).</summary>
    public static string PerFunctionCountScript(string binary) =>
        $"usdt:{binary}:python:function__return {{ @[str(arg0), str(arg1)] = count(); }}";

    public static string PrintfScript(string binary) =>
        $"usdt:{binary}:python:function__entry {{ time(\"%H:%M:%S \"); printf(\"%s %s %d\\n\", str(arg0), str(arg1), arg2); }}";

    [GeneratedRegex(@"Lost (\d+) events")] private static partial Regex BpftraceLost();

    /// <summary>The events bpftrace said it lost ("Lost N events" lines), summed.</summary>
    private static long BpftraceLostIn(IEnumerable<string> lines) => lines.Select(l => BpftraceLost().Match(l)).Where(m => m.Success).Sum(m => long.Parse(m.Groups[1].Value));
    [GeneratedRegex(@"(\d+) events delivered, (\d+) lost")] private static partial Regex PyprobeDetached();
    [GeneratedRegex(@"^@(?:\[(\d+)\])?: (\d+)$")] private static partial Regex BpftraceCount();
    [GeneratedRegex(@"^@\[\S*leaf\.py, leaf\]: (\d+)$")] private static partial Regex BpftraceLeafRow();

    /// <summary>
    /// Starts the workload (held before its first call), attaches <paramref name="tool"/> to it (-p PID, or
    /// every process of the binary with procs), releases it, and counts what the tool saw.
    /// </summary>
    public static Run RunOnce(Bench bench, Py py, Tool tool, IReadOnlyList<string> workloadArgs)
    {
        using var workload = Child.Start([.. py.Command, bench.Workload, .. workloadArgs], env: py.Env);
        var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException($"workload did not start: {string.Join(" | ", workload.Err)}");
        var ids = ready.Line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(int.Parse).ToList();
        var pid = ids[0];
        var kids = ids.Skip(1).ToList();
        var all = kids.Count > 0;
        string[] target = all ? ["--all", py.Binary] : ["-p", pid.ToString()];

        Child? tracer = null;
        BareUprobe? bare = null;
        string? outFile = null;
        string? note = null;
        try
        {
            switch (tool)
            {
                case Tool.Bare or Tool.BareEntryAndReturn:
                    bare = BareUprobe.Attach(py.Binary, all ? 0 : pid, withReturn: tool == Tool.BareEntryAndReturn);
                    break;
                case Tool.BpftraceCount or Tool.BpftraceCountPerFunction:
                    var script = tool == Tool.BpftraceCount ? CountScript(py.Binary, all) : PerFunctionCountScript(py.Binary);
                    tracer = Child.Start(["bpftrace", .. all ? Array.Empty<string>() : ["-p", pid.ToString()], "-e", script]);
                    if (tracer.WaitLine(l => l.StartsWith("Attaching", StringComparison.Ordinal), TimeSpan.FromSeconds(60)) is null)
                        throw new InvalidOperationException($"bpftrace did not attach: {string.Join(" | ", tracer.Err)}");
                    Thread.Sleep(bench.BpftraceSettle);
                    break;
                case Tool.BpftracePrintf:
                    outFile = bench.TempFile("bt");
                    tracer = Child.Start(["bpftrace", "-o", outFile, "-e", PrintfScript(py.Binary)]);
                    WaitForFileLine(outFile, "Attaching", tracer, TimeSpan.FromSeconds(60));
                    Thread.Sleep(bench.BpftraceSettle);
                    break;
                case Tool.PyprobeTrace or Tool.PyprobeTraceRing or Tool.PyprobeTraceHighPriority or Tool.PyprobeTraceNormalPriority or Tool.PyprobeTraceRealtime:
                    outFile = bench.TempFile("pp");
                    string[] priority = tool switch
                    {
                        Tool.PyprobeTraceHighPriority => ["--priority", "high"],
                        Tool.PyprobeTraceNormalPriority => ["--priority", "normal"],
                        Tool.PyprobeTraceRealtime => ["--priority", "realtime"],
                        _ => [],
                    };
                    tracer = Child.Start([bench.Pyprobe, "trace", .. target, "-o", outFile, .. priority],
                        env: tool == Tool.PyprobeTraceRing ? new Dictionary<string, string> { ["PYPROBE_EVENT_RING"] = "1" } : null);
                    WaitAttached(tracer);
                    break;
                case Tool.PyprobeCalls or Tool.PyprobeCallsCount:
                    tracer = Child.Start([bench.Pyprobe, "calls", .. target, "--format", "json", .. tool == Tool.PyprobeCallsCount ? new[] { "--count" } : []]);
                    WaitAttached(tracer);
                    break;
            }

            var cpusBefore = MachineCpu();
            workload.WriteLine("go");
            if (!workload.Wait(TimeSpan.FromMinutes(10))) note = "workload timed out";
            var cpusAfter = MachineCpu();
            var results = workload.Out.Where(l => l.StartsWith("result ", StringComparison.Ordinal))
                .Select(l => l.Split(' ').Skip(1).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1])).ToList();
            if (results.Count == 0) throw new InvalidOperationException($"workload printed no result: {string.Join(" | ", workload.Err)}");
            var calls = results.Sum(r => long.Parse(r["calls"]));
            var start = results.Min(r => double.Parse(r["start"]));
            var end = results.Max(r => double.Parse(r["end"]));
            var nsPerCall = (end - start) * 1e9 / Math.Max(1, calls);
            (double, double)? programsCpu = results.All(r => r.ContainsKey("user") && r.ContainsKey("sys"))
                ? (results.Sum(r => double.Parse(r["user"], CultureInfo.InvariantCulture)), results.Sum(r => double.Parse(r["sys"], CultureInfo.InvariantCulture)))
                : null;
            (double, double)? toolCpu = null;

            if (tracer is not null)
            {
                var exitsWithTarget = !all && tool is Tool.BpftraceCount or Tool.BpftraceCountPerFunction or Tool.PyprobeTrace or Tool.PyprobeCalls or Tool.PyprobeCallsCount;
                if (!exitsWithTarget)
                {
                    Thread.Sleep(500);
                    toolCpu = ProcessCpu(tracer.Pid);
                    tracer.Signal(Native.SIGINT);
                }
                if (!tracer.Wait(TimeSpan.FromMinutes(3))) note = "tracer did not exit; killed";
            }
            bare?.Dispose();
            bare = null;

            long? seen = null, toolLost = null, delivered = null;
            var texts = tracer is null ? [] : tracer.Out.Concat(tracer.Err).ToList();
            switch (tool)
            {
                case Tool.BpftraceCount:
                    long sum = 0;
                    var printed = false;
                    foreach (var line in texts)
                    {
                        var m = BpftraceCount().Match(line.Trim());
                        if (!m.Success) continue;
                        printed = true;
                        if (!all || kids.Contains(int.Parse(m.Groups[1].Value))) sum += long.Parse(m.Groups[2].Value);
                    }
                    seen = printed ? sum : null; // a bpftrace that printed no map (killed) counts as a failed run, not as 0 seen
                    toolLost = BpftraceLostIn(texts);
                    break;
                case Tool.BpftraceCountPerFunction:
                    // @[/path/leaf.py, leaf]: N
                    foreach (var line in texts)
                        if (BpftraceLeafRow().Match(line.Trim()) is { Success: true } row) seen = (seen ?? 0) + long.Parse(row.Groups[1].Value);
                    toolLost = BpftraceLostIn(texts);
                    break;
                case Tool.BpftracePrintf:
                    long leaf = 0, lost = 0;
                    foreach (var line in File.ReadLines(outFile!))
                    {
                        if (line.Contains(" leaf ", StringComparison.Ordinal) && line.Contains("leaf.py", StringComparison.Ordinal)) leaf++;
                        else if (BpftraceLost().Match(line) is { Success: true } m) lost += long.Parse(m.Groups[1].Value);
                    }
                    seen = leaf;
                    toolLost = lost + BpftraceLostIn(texts);
                    break;
                case Tool.PyprobeTrace or Tool.PyprobeTraceRing or Tool.PyprobeTraceHighPriority or Tool.PyprobeTraceNormalPriority or Tool.PyprobeTraceRealtime:
                    long leafLines = 0;
                    foreach (var line in File.ReadLines(outFile!))
                        if (line.Contains("funcname=leaf,", StringComparison.Ordinal) && line.Contains("leaf.py", StringComparison.Ordinal)) leafLines++;
                    seen = leafLines;
                    (delivered, toolLost) = ParseDetached(tracer!);
                    // Fewer events than calls with none reported lost, or no word of what it delivered: pyprobe may have
                    // stopped on an error; keep its last words with the run (a crash once left only a short count in the log).
                    if (delivered is null || (leafLines < calls && toolLost is not > 0))
                        note = (note is null ? "" : note + "; ") + "pyprobe said: " + string.Join(" | ", tracer!.Err.TakeLast(3));
                    break;
                case Tool.PyprobeCalls or Tool.PyprobeCallsCount:
                    seen = ParseCallsJson(string.Join("\n", tracer!.Out), all ? kids : null);
                    (delivered, toolLost) = ParseDetached(tracer);
                    if (seen is null) note = "no leaf row in the output of pyprobe calls";
                    break;
            }
            return new Run(tool, nsPerCall, calls, seen, toolLost, delivered, note)
            {
                Rate = calls / Math.Max(1e-9, end - start),
                Wall = end - start,
                ProgramsCpu = programsCpu,
                ToolCpu = toolCpu,
                MachineBusy = cpusAfter.Total > cpusBefore.Total ? 1 - (double)(cpusAfter.Idle - cpusBefore.Idle) / (cpusAfter.Total - cpusBefore.Total) : null,
            };
        }
        finally
        {
            bare?.Dispose();
            tracer?.Dispose();
            if (outFile is not null) File.Delete(outFile);
        }
    }

    /// <summary>The machine's CPU time so far, all CPUs, in ticks: the total and the idle part (idle + iowait) of /proc/stat's cpu line.</summary>
    private static (long Total, long Idle) MachineCpu()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(long.Parse).ToArray();
        return (fields.Sum(), fields[3] + fields[4]);
    }

    /// <summary>User and kernel CPU seconds of a running process (all its threads, ended ones included): /proc/PID/stat fields 14 and 15.</summary>
    private static (double User, double Sys)? ProcessCpu(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields[0] is field 3
            const double UserHz = 100.0; // clock ticks per second in /proc (USER_HZ, fixed in the Linux ABI)
            return (long.Parse(fields[14 - 3]) / UserHz, long.Parse(fields[15 - 3]) / UserHz);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static (long? Delivered, long? Lost) ParseDetached(Child tracer)
    {
        foreach (var line in tracer.Err)
            if (PyprobeDetached().Match(line) is { Success: true } m) return (long.Parse(m.Groups[1].Value), long.Parse(m.Groups[2].Value));
        return (null, null);
    }

    /// <summary>The call count of leaf() in pyprobe calls --format json (whatever the exact schema: any object naming leaf with a count).</summary>
    private static long? ParseCallsJson(string text, IReadOnlyList<int>? pids)
    {
        long? total = null;
        foreach (var chunk in SplitJson(text))
        {
            try
            {
                using var doc = JsonDocument.Parse(chunk);
                Walk(doc.RootElement);
            }
            catch (JsonException) { }
        }
        return total;

        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array) { foreach (var x in e.EnumerateArray()) Walk(x); return; }
            if (e.ValueKind != JsonValueKind.Object) return;
            var isLeaf = (e.TryGetProperty("function", out var f) || e.TryGetProperty("funcname", out f) || e.TryGetProperty("name", out f))
                && f.ValueKind == JsonValueKind.String && f.GetString() == "leaf";
            if (isLeaf && (e.TryGetProperty("calls", out var c) || e.TryGetProperty("count", out c)) && c.ValueKind == JsonValueKind.Number)
            {
                if (pids is null || !e.TryGetProperty("pid", out var p) || pids.Contains(p.GetInt32()))
                    total = (total ?? 0) + c.GetInt64();
                return;
            }
            foreach (var prop in e.EnumerateObject()) Walk(prop.Value);
        }
    }

    /// <summary>One JSON document, or one per line (NDJSON).</summary>
    private static IEnumerable<string> SplitJson(string text)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0) return [];
        try
        {
            using var _ = JsonDocument.Parse(trimmed);
            return [trimmed];
        }
        catch (JsonException)
        {
            return trimmed.Split('\n').Where(l => l.Trim().Length > 0).ToList();
        }
    }

    public static void WaitAttached(Child tracer)
    {
        if (tracer.WaitLine(l => l.StartsWith("Attached", StringComparison.Ordinal), TimeSpan.FromSeconds(60), stderr: true) is null)
            throw new InvalidOperationException($"{string.Join(' ', tracer.Argv.Take(2))} did not attach: {string.Join(" | ", tracer.Err)}");
    }

    private static void WaitForFileLine(string path, string prefix, Child tracer, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path))
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                if (reader.ReadLine() is { } first && first.StartsWith(prefix, StringComparison.Ordinal)) return;
            }
            if (tracer.Process.HasExited) break;
            Thread.Sleep(20);
        }
        throw new InvalidOperationException($"bpftrace did not attach: {string.Join(" | ", tracer.Err)}");
    }
}
