using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Bench;

/// <summary>
/// What a stack dump costs the program it looks at: threads.py (N sleeping threads and one spinning that notes the longest
/// gap between two of its loop turns) under pyprobe dump, dump --native, austin --where and gdb's "thread apply all bt".
/// The gap is how long the program stood still; pyprobe's own figure for --native is the time it held the process.
/// </summary>
internal static partial class DumpSection
{
    public const string Title = "Stack dumps: what dump and dump --native cost the program";
    private static readonly int[] TaskCounts = [100, 1000, 10_000];
    private static readonly int[] ThreadCounts = [1, 16, 64];

    private enum Tool { None, Dump, DumpNative, Austin, Gdb }

    private sealed record Sample(double WallMs, double GapMs, double? HeldMs);

    public static void Run(Bench bench, Report report, IReadOnlyList<Py> pythons)
    {
        var python = ProfilerSection.PyenvPython("3.13");
        if (python is null)
        {
            Bench.Log("dump: no pyenv 3.13 in ~/.pyenv/versions; the section is skipped");
            return;
        }
        var tools = new List<Tool> { Tool.None, Tool.Dump, Tool.DumpNative };
        if (File.Exists(ProfilerCases.AustinLauncher)) tools.Add(Tool.Austin);
        else Bench.Log("dump: austin is not in the cache (scripts/fetch-austin.sh); its rows are skipped");
        if (Program.Sh("gdb", "--version").Code == 0) tools.Add(Tool.Gdb);
        else Bench.Log("dump: gdb is not installed; its rows are skipped");

        var results = new Dictionary<(int Threads, Tool Tool), List<Sample>>();
        foreach (var threads in ThreadCounts)
            for (var rep = 0; rep < bench.Reps; rep++)
            {
                var order = rep % 2 == 0 ? tools : Enumerable.Reverse(tools).ToList();
                foreach (var tool in order)
                {
                    var sample = Measure(bench, python, threads, tool);
                    if (sample is null) continue;
                    (results.TryGetValue((threads, tool), out var list) ? list : results[(threads, tool)] = []).Add(sample);
                    Bench.Log($"dump {threads} threads {tool}: {sample.WallMs:0.0} ms, gap {sample.GapMs:0.00} ms{(sample.HeldMs is { } h ? $", held {h:0.0} ms" : "")}");
                }
            }

        var version = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(python)));
        report.Section(Title, $"""
            pyenv {version}, `bench/workloads/threads.py N`: N threads asleep in `time.sleep` and one spinning in Python that
            notes the longest gap between two turns of its loop, reset before each tool runs and read after it. That gap is
            how long the program stood still (the rows with no tool are this machine's own noise over the same wait).
            `dump` reads the stacks from `/proc/PID/mem` while the program runs; `dump --native` holds every thread
            with ptrace while it reads registers, stacks and Python frames, and says for how long ("held"); austin `--where`
            reads memory like `dump`; gdb stops the process for its whole run (and loads debug symbols). Wall is the tool's
            run from launch to exit.
            """);
        string Cell(List<Sample>? runs, Func<Sample, double?> pick, string format = "0.0")
        {
            var values = runs?.Select(pick).OfType<double>().ToList() ?? [];
            return values.Count == 0 ? "–" : Stats.Spread(values, format);
        }
        report.Table(["threads", "tool", "wall (ms)", "longest stop of the program (ms)", "held, as pyprobe says (ms)"],
            ThreadCounts.SelectMany(threads => tools.Select(tool =>
            {
                results.TryGetValue((threads, tool), out var runs);
                return (IReadOnlyList<string>)[$"{threads} asleep, 1 spinning, main", Name(tool), tool == Tool.None ? "–" : Cell(runs, r => r.WallMs),
                    Cell(runs, r => r.GapMs, "0.00"), Cell(runs, r => r.HeldMs)];
            })));
        Tasks(bench, report, pythons);
    }

    /// <summary>
    /// dump --tasks against CPython's own <c>python -m asyncio ps</c> (3.14+) on the same process: tasks.py N (N tasks three
    /// coroutines deep in an Event's wait, gathered), wall time and how many tasks each listed.
    /// </summary>
    private static void Tasks(Bench bench, Report report, IReadOnlyList<Py> pythons)
    {
        var targets = pythons.Where(p => p.Version is "3.14" or "3.15").ToList();
        if (targets.Count == 0)
        {
            Bench.Log("dump: no Debian 3.14/3.15 in the cache; the asyncio tasks rows are skipped");
            return;
        }
        var rows = new List<IReadOnlyList<string>>();
        foreach (var py in targets)
            foreach (var count in TaskCounts)
            {
                var runs = new Dictionary<string, List<(double Ms, int Listed)>>();
                for (var rep = 0; rep < bench.Reps; rep++)
                {
                    using var target = Child.Start([.. py.Command, Path.Combine(bench.Root, "bench", "workloads", "tasks.py"), count.ToString(CultureInfo.InvariantCulture)], env: py.Env);
                    if (target.WaitLine(l => l == "ready", TimeSpan.FromSeconds(60)) is null)
                    {
                        Bench.Log($"dump: tasks.py did not start: {string.Join(" | ", target.Err)}");
                        continue;
                    }
                    var pid = target.Pid.ToString(CultureInfo.InvariantCulture);
                    var tools = new (string Name, string[] Argv, Func<string, int> Listed)[]
                    {
                        ("pyprobe dump --tasks -p PID", [bench.Pyprobe, "dump", "--tasks", "-p", pid], o => o.Split('\n').Count(l => l.StartsWith("Task ", StringComparison.Ordinal))),
                        ($"python{py.Version} -m asyncio ps PID", [.. py.Command, "-m", "asyncio", "ps", pid], o => Math.Max(0, o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 2)),
                    };
                    foreach (var (name, argv, listed) in rep % 2 == 0 ? tools : tools.Reverse())
                    {
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        var (code, output) = Program.Sh(py.Env, argv);
                        var ms = clock.Elapsed.TotalMilliseconds;
                        if (code != 0)
                        {
                            Bench.Log($"dump: {name} failed ({code}): {output[..Math.Min(300, output.Length)]}");
                            continue;
                        }
                        (runs.TryGetValue(name, out var list) ? list : runs[name] = []).Add((ms, listed(output)));
                        Bench.Log($"dump --tasks {py.FullVersion} {count} tasks {name}: {ms:0} ms, {listed(output)} listed");
                    }
                }
                foreach (var (name, list) in runs)
                    rows.Add([$"Debian {py.FullVersion}", $"{count + 1:N0}", name, Stats.Spread(list.Select(r => r.Ms).ToList(), "0"),
                        string.Join(", ", list.Select(r => r.Listed).Distinct())]);
            }
        report.Text("""
            **asyncio tasks**: `bench/workloads/tasks.py N` (N tasks, each three coroutines deep in an `Event.wait`, and the
            task gathering them: N + 1 pending), read by `pyprobe dump --tasks` and by CPython's own `python -m asyncio ps`
            (3.14+, the same interpreter) on the same process, in turn. Wall time from launch to exit; "listed" = the tasks
            each printed.
            """);
        report.Table(["interpreter", "tasks", "tool", "wall (ms)", "listed"], rows);
    }

    private static string Name(Tool tool) => tool switch
    {
        Tool.None => "no tool (the machine's own noise)",
        Tool.Dump => "pyprobe dump -p PID",
        Tool.DumpNative => "pyprobe dump --native -p PID",
        Tool.Austin => "austin --where PID",
        _ => "gdb -p PID -batch -ex 'thread apply all bt'",
    };

    private static Sample? Measure(Bench bench, string python, int threads, Tool tool)
    {
        using var target = Child.Start([python, Path.Combine(bench.Root, "bench", "workloads", "threads.py"), threads.ToString(CultureInfo.InvariantCulture)]);
        var ready = target.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        if (ready is null)
        {
            Bench.Log($"dump: threads.py did not start: {string.Join(" | ", target.Err)}");
            return null;
        }
        var pid = ready.Value.Line.Split(' ')[1];
        Thread.Sleep(300);
        target.WriteLine("reset");
        target.WaitLine(l => l == "reset", TimeSpan.FromSeconds(10));
        Thread.Sleep(100);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (code, output) = tool switch
        {
            Tool.Dump => Program.Sh(bench.Pyprobe, "dump", "-p", pid),
            Tool.DumpNative => Program.Sh(bench.Pyprobe, "dump", "--native", "-p", pid),
            Tool.Austin => Program.Sh(ProfilerCases.AustinLauncher, "--where", pid),
            Tool.Gdb => Program.Sh("gdb", "-p", pid, "-batch", "-ex", "thread apply all bt"),
            _ => (0, ""),
        };
        var wall = clock.Elapsed.TotalMilliseconds;
        if (tool == Tool.None) Thread.Sleep(100);
        if (code != 0)
        {
            Bench.Log($"dump: {Name(tool)} failed ({code}): {output[..Math.Min(300, output.Length)]}");
            return null;
        }
        Thread.Sleep(100);
        target.WriteLine("report");
        var gap = target.WaitLine(l => l.StartsWith("gap ", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        if (gap is null) return null;
        double? held = HeldPattern().Match(output) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        return new Sample(wall, double.Parse(gap.Value.Line[4..], CultureInfo.InvariantCulture), held);
    }

    [GeneratedRegex(@"\(held still ([\d.]+) ms")]
    private static partial Regex HeldPattern();
}
