using System.Text.RegularExpressions;
using Pyprobe.Bpf.Asm;
using Pyprobe.Bpf.Features;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.Programs;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Runtime;

namespace Pyprobe.Bench;

/// <summary>
/// Function events from each source against the bare uprobe on the same site: USDT (Debian 3.9), a uprobe on
/// _PyEval_EvalFrameDefault (pyenv 3.9), the same with the eval-frame hook (pyenv 3.11/3.12, Debian 3.13/3.14),
/// and on Debian 3.11 the line gate against the hook; plus a 500-deep recursion traced exactly.
/// </summary>
internal static partial class EvalFrameCases
{
    /// <summary>What runs with the workload. The bare cases write the hook themselves where the version needs it.</summary>
    private enum Case { None, HookAlone, BareEntry, BareEntryAndReturns, BareEntryAndUretprobe, Trace, TraceGate, Calls, CallsCount }

    private static string Label(Case c, bool hook) => c switch
    {
        Case.None => "no tracing",
        Case.HookAlone => "eval-frame hook written, no probe",
        Case.BareEntry => hook ? "empty program on the entry site (+ hook)" : "empty program on the entry site",
        Case.BareEntryAndReturns => hook ? "empty program on entry + every ret (+ hook)" : "empty program on entry + every ret",
        Case.BareEntryAndUretprobe => hook ? "empty program on entry + a uretprobe (+ hook; not used by pyprobe: 64 pending returns at most)" : "empty program on entry + a uretprobe (not used by pyprobe: 64 pending returns at most)",
        Case.Trace => "pyprobe trace function__entry",
        Case.TraceGate => "pyprobe trace function__entry --no-write (USDT + line gate; the 3.11 default with returns)",
        Case.Calls => "pyprobe calls",
        Case.CallsCount => "pyprobe calls --count (the entry alone, no ret)",
        _ => c.ToString(),
    };

    /// <summary>calls --count where dist/pyprobe has it (a baseline binary may predate it).</summary>
    private static Case[] CountIfAny(Bench bench) => bench.HasCallsCount ? [Case.CallsCount] : [];

    private sealed record Subject(string Name, Py Py, string Source, bool Hook, bool Usdt, Case[] Cases);

    public static void Section(Bench bench, Report report, IReadOnlyList<Py> debian)
    {
        Py? Debian(string v) => debian.FirstOrDefault(p => p.Version == v);
        Py? Pyenv(string version)
        {
            var minor = string.Join('.', version.Split('.').Take(2));
            var binary = $"/root/.pyenv/versions/{version}/bin/python{minor}";
            return File.Exists(binary) ? new Py(minor, $"{version} (pyenv)", binary, binary, [binary], new Dictionary<string, string>()) : null;
        }
        Case[] plain = [Case.None, Case.BareEntry, Case.BareEntryAndReturns, Case.BareEntryAndUretprobe, Case.Trace, Case.Calls, .. CountIfAny(bench)];
        Case[] hooked = [Case.None, Case.HookAlone, Case.BareEntry, Case.BareEntryAndReturns, Case.BareEntryAndUretprobe, Case.Trace, Case.Calls, .. CountIfAny(bench)];
        var subjects = new List<Subject?>
        {
            Debian("3.9") is { } d39 ? new Subject($"Debian {d39.FullVersion}", d39, "USDT", false, true, [Case.None, Case.BareEntry, Case.Trace, Case.Calls, .. CountIfAny(bench)]) : null,
            Pyenv("3.9.18") is { } p39 ? new Subject($"pyenv {p39.FullVersion}", p39, "eval-frame uprobe", false, false, plain) : null,
            Debian("3.11") is { } d311 ? new Subject($"Debian {d311.FullVersion}", d311, "entries through the hook, returns through USDT + line gate", true, false, [Case.None, Case.HookAlone, Case.BareEntry, Case.BareEntryAndReturns, Case.Trace, Case.TraceGate, Case.Calls, .. CountIfAny(bench)]) : null,
            Pyenv("3.11.7") is { } p311 ? new Subject($"pyenv {p311.FullVersion}", p311, "eval-frame + hook", true, false, hooked) : null,
            Pyenv("3.12.1") is { } p312 ? new Subject($"pyenv {p312.FullVersion}", p312, "eval-frame + hook", true, false, hooked) : null,
            Debian("3.13") is { } d313 ? new Subject($"Debian {d313.FullVersion}", d313, "eval-frame + hook", true, false, hooked) : null,
            Debian("3.14") is { } d314 ? new Subject($"Debian {d314.FullVersion}", d314, "eval-frame + hook", true, false, hooked) : null,
        };
        report.Section("Function events by source",
            $"""
            Where the USDT function probes do not fire (3.11–3.14, builds without probes), function events come from a uprobe on
            `_PyEval_EvalFrameDefault` (past `endbr64`), returns from one on each of its `ret`s, and on 3.11+ pyprobe writes the
            interpreter's eval-frame hook so calls are not inlined. The workload is `bench/workloads/leaf.py` ({bench.Calls:N0} calls,
            `-p PID`, released after the tool attached). "× bare" is the cost a case adds per call divided by what an empty BPF
            program on the same sites adds (with the hook written, where the version needs it, by the bench itself); the trace
            row compares with the entry site, calls with entry + every ret. "hook alone" is the interpreter's own cost of the hook.
            The uretprobe row is what returns would cost through the kernel's return trampoline instead of a probe on each
            `ret` (which x86 single-steps): pyprobe does not use it, because the kernel keeps at most 64 pending returns per task.
            On Debian's 3.11, which has probes, entries alone come through the hook (the line gate the USDT entry probe needs
            slows every line; `--no-write` measures it) and anything with returns through USDT and the gate (a USDT return
            is ~1 µs, a ret ~10: compare calls with pyenv's 3.11, the same version through the hook); there "× bare"
            compares with the bare eval-frame probes.
            `calls --count` counts each activation at the entry alone (no uprobe on the rets): its "× bare" compares with the entry site.
            The 500-deep recursion column: entries/returns of `r` that `pyprobe trace -- python -c ...` reported for `r(499)`.
            "program ns per call": the run time of pyprobe's BPF programs (`run_time_ns` with `kernel.bpf_stats_enabled` on
            for the whole section, restored after; it is on for the bare cases too) over the workload's calls — the part of
            the added cost spent in the programs rather than in the uprobe trap around them.

            Where an eval-frame entry's time goes (bpf_stats, 2026-11-29, pyprobe before and after side by side on pyenv 3.9,
            3.11, 3.12 and Debian 3.13, 3.14): the entry program took 1270–1290 ns; 730–755 ns since it pushes nothing onto the
            activation stack when no return is traced (two LRU-hash operations, ~400 ns: nothing pops them) and reads the code
            object's name, filename and first line in one read instead of three (~130 ns). What is left is four
            bpf_probe_read_user calls of ~90 ns each (the frame's code object, that span, each str's state) and the two string
            copies (~75 ns each), so the program costs about what the bare trap does: 1.5× would need it under ~400 ns, about
            what the USDT program costs with no reads at all (436 ns on Debian 3.9, itself 1.77× its bare probe). A memo by code
            object sends the names of a code object seen before as interned strings (address and a hash of the bytes), and since
            its entries are dropped where code objects die (a uprobe on PyCode_Type's tp_dealloc) and when their process execs
            or exits, a hit needs no read but the frame's code object: on every version, with no co_version to check. Side by
            side with bpf_stats (2026-11-30, 500k calls, two runs each), entry program before → after: pyenv 3.9 723–765 →
            341–352 ns, pyenv 3.11 756–767 → 315–327, pyenv 3.12 (memo checked by co_version before) 473–501 → 330–373,
            Debian 3.14 447–479 → 329–346.
            """);
        var summary = new List<IReadOnlyList<string>>();
        var loadBefore = string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        var started = DateTime.UtcNow;
        using var bpfStats = BpfStatsSwitch.Enable();
        foreach (var subject in subjects.OfType<Subject>())
        {
            var runs = subject.Cases.ToDictionary(c => c, _ => new List<double>());
            var programNs = subject.Cases.ToDictionary(c => c, _ => new List<double>());
            for (var rep = 0; rep < bench.Reps; rep++)
            {
                var order = rep % 2 == 0 ? subject.Cases : subject.Cases.Reverse().ToArray();
                foreach (var c in order)
                {
                    try
                    {
                        var (ns, program) = RunOnce(bench, subject, c);
                        runs[c].Add(ns);
                        if (program is double p) programNs[c].Add(p);
                        Bench.Log($"evalframe {subject.Name} rep {rep + 1} {c}: {ns:0} ns/call" + (program is double q ? $", programs {q:0} ns/call" : ""));
                    }
                    catch (Exception e)
                    {
                        Bench.Log($"evalframe {subject.Name} rep {rep + 1} {c} failed: {e.Message}");
                    }
                }
            }
            var none = Stats.Median(runs[Case.None]);
            double Added(Case c) => runs.TryGetValue(c, out var l) && l.Count > 0 ? Stats.Median(l) - none : double.NaN;
            var recursion = Recursion(bench, subject);
            report.Text($"### {subject.Name}: {subject.Source}");
            report.Table(["case", "ns per call", "added ns per call", "× bare", "program ns per call"], subject.Cases.Select(c =>
            {
                var list = runs[c];
                if (list.Count == 0) return (IReadOnlyList<string>)[Label(c, subject.Hook), "failed", "", "", ""];
                var bare = c is Case.Calls && runs.ContainsKey(Case.BareEntryAndReturns) ? Added(Case.BareEntryAndReturns) : Added(Case.BareEntry);
                var ratio = c is Case.Trace or Case.TraceGate or Case.Calls or Case.CallsCount ? (Added(c) / bare).ToString("0.00") : "–";
                var program = programNs[c].Count > 0 ? Stats.Median(programNs[c]).ToString("0") : "–";
                return [Label(c, subject.Hook), Stats.Spread(list), c == Case.None ? "–" : Added(c).ToString("0"), ratio, program];
            }));
            var trace = runs.ContainsKey(Case.Trace) ? Case.Trace : Case.TraceGate;
            summary.Add([subject.Name, subject.Source, Added(Case.BareEntry).ToString("0"), Added(trace).ToString("0"),
                (Added(trace) / Added(Case.BareEntry)).ToString("0.00"), Added(Case.Calls).ToString("0"),
                (Added(Case.Calls) / (runs.ContainsKey(Case.BareEntryAndReturns) ? Added(Case.BareEntryAndReturns) : Added(Case.BareEntry))).ToString("0.00"),
                runs.ContainsKey(Case.CallsCount) ? Added(Case.CallsCount).ToString("0") : "–",
                subject.Hook ? Added(Case.HookAlone).ToString("0") : "–",
                recursion]);
        }
        report.Text("### Summary (added ns per call)");
        report.Table(["interpreter", "source", "bare entry", "trace", "trace × bare", "calls", "calls × bare", "calls --count", "hook alone", "500-deep recursion"], summary);
        report.Text($"This section: {started:yyyy-MM-dd HH:mm} UTC, {bench.Reps} repetitions per case, {(DateTime.UtcNow - started).TotalMinutes:0.0} min; " +
            $"load averages {loadBefore} at its start, {string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3))} at its end (the machine is shared: compare within a table, not across runs).");
    }

    /// <summary>One run of the workload: its own ns per leaf() call, and pyprobe's programs' run time per call (pyprobe cases).</summary>
    private static (double Ns, double? ProgramNs) RunOnce(Bench bench, Subject subject, Case c)
    {
        using var workload = Child.Start([.. subject.Py.Command, bench.Workload, bench.Calls.ToString()], env: subject.Py.Env);
        var ready = workload.WaitLine(l => l.StartsWith("ready ", StringComparison.Ordinal), TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException($"workload did not start: {string.Join(" | ", workload.Err)}");
        var pid = int.Parse(ready.Line.Split(' ')[1]);
        Child? tracer = null;
        var owned = new List<IDisposable>();
        try
        {
            switch (c)
            {
                case Case.HookAlone:
                    owned.Add(Hook(pid));
                    break;
                case Case.BareEntry or Case.BareEntryAndReturns or Case.BareEntryAndUretprobe:
                    owned.AddRange(Bare(subject, pid, c == Case.BareEntryAndReturns, c == Case.BareEntryAndUretprobe));
                    break;
                case Case.Trace or Case.TraceGate:
                    // --no-write: on 3.11 with probes, USDT and the line gate instead of the hook.
                    tracer = Child.Start([bench.Pyprobe, "trace", "function__entry", "-p", pid.ToString(), "-o", "/dev/null", .. c == Case.TraceGate ? ["--no-write"] : Array.Empty<string>()]);
                    Cases.WaitAttached(tracer);
                    break;
                case Case.Calls or Case.CallsCount:
                    tracer = Child.Start([bench.Pyprobe, "calls", "-p", pid.ToString(), "-o", "/dev/null", .. c == Case.CallsCount ? ["--count"] : Array.Empty<string>()]);
                    Cases.WaitAttached(tracer);
                    break;
            }
            var before = tracer is null ? default : ProgramRunTime.OfProcess(tracer.Pid);
            workload.WriteLine("go");
            // Read at the result line, while the tracer is still attached (it leaves once the workload has exited).
            var resultLine = workload.WaitLine(l => l.StartsWith("result ", StringComparison.Ordinal), TimeSpan.FromMinutes(5))
                ?? throw new InvalidOperationException("workload timed out");
            var after = tracer is null ? default : ProgramRunTime.OfProcess(tracer.Pid);
            if (!workload.Wait(TimeSpan.FromMinutes(5))) throw new InvalidOperationException("workload timed out");
            var result = resultLine.Line.Split(' ').Skip(1).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]);
            tracer?.Wait(TimeSpan.FromMinutes(1));
            var calls = long.Parse(result["calls"]);
            double? programNs = tracer is null ? null : (double)(after.RunTimeNs - before.RunTimeNs) / calls;
            return ((double.Parse(result["end"]) - double.Parse(result["start"])) * 1e9 / calls, programNs);
        }
        finally
        {
            for (var i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
            tracer?.Dispose();
        }
    }

    private static EvalFrameHook Hook(int pid)
    {
        using var process = CPythonProcess.Attach(pid);
        return EvalFrameHook.Install(process);
    }

    /// <summary>An empty program on the USDT function__entry sites, or on _PyEval_EvalFrameDefault's entry (and rets), with the hook where needed.</summary>
    /// <param name="uretprobe">Returns through the kernel's return trampoline instead of a probe on each ret: what
    /// they would cost (the kernel keeps at most 64 pending returns per task, which is why pyprobe probes the rets).</param>
    private static List<IDisposable> Bare(Subject subject, int pid, bool returns, bool uretprobe = false)
    {
        if (subject.Usdt) return [BareUprobe.Attach(subject.Py.Binary, pid)];
        MemlockLimit.RemoveIfNeeded();
        var owned = new List<IDisposable>();
        using var process = CPythonProcess.Attach(pid);
        var binary = process.Binary;
        var sites = EvalFrameSites.Find(binary);
        ulong Offset(ulong address) => binary.Elf.TryVirtualAddressToFileOffset(address, executable: true) ?? throw new InvalidOperationException($"0x{address:x} is not mapped");
        var offsets = new List<UprobeSite> { new(Offset(sites.Entry)) };
        if (returns) offsets.AddRange(sites.Returns.Select(r => new UprobeSite(Offset(r))));
        var code = new InstructionBuilder().Mov64(Register.R0, 0).Exit().Assemble();
        var program = BpfProgram.Load(new ProgramSpec("bench_bare_ef", ProgramType.Kprobe, code.Bytecode, AttachType.TraceUprobeMulti));
        owned.Add(program);
        var path = $"/proc/{pid}/root{binary.DisplayPath}";
        owned.Add(UprobeMultiLink.Attach(program, File.Exists(path) ? path : binary.OpenPath, offsets, pid));
        if (uretprobe) owned.Add(UprobeMultiLink.Attach(program, File.Exists(path) ? path : binary.OpenPath, [new UprobeSite(Offset(sites.Entry))], pid, returnProbe: true));
        if (subject.Hook) owned.Add(EvalFrameHook.Install(process));
        return owned;
    }

    /// <summary>"500/500": entries/returns of r for r(499) under pyprobe trace -- CMD.</summary>
    private static string Recursion(Bench bench, Subject subject)
    {
        var output = bench.TempFile("rec");
        try
        {
            var run = Program.Sh(subject.Py.Env, [bench.Pyprobe, "trace", "function__entry", "function__return", "-o", output, "--",
                .. subject.Py.Command, "-c", "def r(n):\n    return 0 if n == 0 else r(n - 1)\nr(499)\n"]);
            if (run.Code != 0) return $"failed ({run.Out.Split('\n').Last()})";
            long entries = 0, returns = 0;
            foreach (var line in File.ReadLines(output))
            {
                if (!RecursionLine().IsMatch(line)) continue;
                if (line.Contains("function__entry", StringComparison.Ordinal)) entries++;
                else returns++;
            }
            return $"{entries}/{returns}";
        }
        finally
        {
            File.Delete(output);
        }
    }

    [GeneratedRegex(@"funcname=r,")]
    private static partial Regex RecursionLine();
}
