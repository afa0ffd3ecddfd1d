using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Python.Profiling;
using Pyprobe.Usdt.Unwind;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe record (-p PID... | --all [PATH] | -- CMD ARGS...) [-r HZ] [--duration S] [-o FILE] [--format F] [--idle] [--threads]:
/// a CPU profile (or with --idle a wall-clock one) of any CPython 3.8–3.15, with or without USDT probes. A perf-event program walks the Python
/// stack of every sampled thread in the kernel; user space names the frames and writes a flame graph,
/// speedscope, pprof or collapsed stacks. Nothing is written into the target.
/// </summary>
internal static class RecordCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        // The sampler reads any CPython, probes or not: --all without PATH is every one of them.
        target.All.Description = "Sample every process that runs PATH (default: every running CPython, with probes or not, and new ones).";
        var rate = SampledRun.RateOption();
        var duration = SharedOptions.Duration();
        duration.Description = $"Stop after SECONDS and write the profile; a command started with -- CMD is then ended as timeout(1) does (SIGTERM to it and what it started, SIGKILL after {TracingRun<SamplingSession>.CommandGrace.TotalSeconds:0} s; said on stderr with its pid). Without it: until the command exits, Ctrl-C or SIGTERM (each writes the profile).";
        var file = SharedOptions.OutputFile();
        file.Description = "Write the profile to FILE (default: pyprobe-PID-DATE.EXT in the current folder).";
        var format = SharedOptions.Format(OutputKind.Profile, FlameGraphWriter.Format);
        var idle = new Option<bool>("--idle") { Description = "Wall clock: also threads that sleep, wait for I/O or a lock, or were preempted, with the stack they left the CPU with." };
        var threads = new Option<bool>("--threads") { Description = "A root frame per thread: thread TID (NAME)." };
        var byFunction = new Option<bool>("--function") { Description = "One frame per function: samples at its first line (the def), not at the line each was at (a caller's calls from different lines merged)." };
        var gil = new Option<bool>("--gil") { Description = "Only the samples of threads holding the GIL (told in the kernel at each sample, on every version 3.8-3.15): what keeps the other threads waiting. The rest are counted and left out." };
        var native = new Option<bool>("--native") { Description = $"Also the C frames: each sample's native stack (its registers and {StackSampleProgram.DefaultNativeStackBytes / 1024} KiB of its stack, copied by the kernel) unwound with the files' .eh_frame tables and merged with the Python frames: a C extension or library under the Python line that called it. With --idle also where threads wait (a copy at each switch-out of a sampled thread)." };
        var kernel = new Option<bool>("--kernel") { Description = "Also the kernel's frames, under the C frames (implies --native): the system call, page fault or kernel work each sample found the thread in (bpf_get_stack), named from /proc/kallsyms. With --idle, where in the kernel each wait is (a pipe read, a futex, epoll)." };
        var tasks = new Option<bool>("--tasks") { Description = "Root each sample at the asyncio task it ran in and the tasks awaiting it, outermost first, each with the frames it awaits in, under the thread's root with --threads, then the task's own frames from its coroutine in: task main;main;task worker;worker;work. The running task is read in the kernel from the thread state (CPython 3.14+), or found by the outermost coroutine on the stack (3.8–3.13), its awaiters when its samples are added; samples outside a task have none; with --idle, every task suspended in an await is counted there too, for the time it waits, read from the process about 20 times a second." };
        var depth = new Option<int>("--max-depth") { Description = $"Python frames kept per sample (1 to {StackSampleProgram.MaxDepthLimit}; default 512); deeper stacks keep their innermost frames and are counted as truncated.", HelpName = "N", DefaultValueFactory = _ => 512 };
        var command = new Command("record", "Sample the Python stacks of running programs in the kernel and write a CPU or (--idle) wall-clock profile (flame graph, speedscope, pprof, collapsed).");
        target.AddTo(command);
        foreach (var option in new Option[] { rate, duration, file, format, idle, threads, tasks, byFunction, gil, native, kernel, depth }) command.Options.Add(option);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var hz = SampledRun.ReadRate(result, rate);
            var maxDepth = result.GetValue(depth);
            if (maxDepth is < 1 or > StackSampleProgram.MaxDepthLimit) throw new UsageException($"--max-depth must be between 1 and {StackSampleProgram.MaxDepthLimit}");
            var limit = SharedOptions.ReadDuration(result, duration);
            var profileFormat = result.GetValue(format) ?? FlameGraphWriter.Format;
            var path = result.GetValue(file);
            Privileges.RequireTracing("record");
            var stderr = result.InvocationConfiguration.Error;
            var wallClock = result.GetValue(idle);
            var gilOnly = result.GetValue(gil);
            if (gilOnly && wallClock) throw new UsageException("--gil and --idle do not go together: --gil keeps the samples of threads on a CPU holding the GIL");
            var withKernel = result.GetValue(kernel);
            var withNative = result.GetValue(native) || withKernel;

            // Before the first sample: a profile that cannot be written is known now, not after the run.
            using var destination = ProfileDestination.Open(path);
            var started = DateTimeOffset.Now;
            using var run = SampledRun.Start(selection, StackSamplerOptions.Profile(hz, maxDepth, wallClock, gilOnly, withNative, withKernel, result.GetValue(tasks)), result.GetValue(threads), limit, stderr).Run;
            var session = run.Session;
            run.Stream(() =>
            {
                session.PollProcesses();
                return session.Drain();
            }, () => { });
            var profile = session.Build(started, run.Elapsed, wallClock ? ProfileMode.Wall : ProfileMode.Cpu);
            if (result.GetValue(byFunction)) profile = profile.ByFunction();
            var output = path ?? ProfileWriters.DefaultFileName(session.Pids.Count > 0 ? session.Pids[0] : 0, started.LocalDateTime, profileFormat);
            if (profile.Metadata.Pids.Count > 0 || path is not null) output = destination.Commit(profile, profileFormat, output);
            return run.Complete(Report(run.DetachedAfter, profile, session, profileFormat, output), endCommandAtDuration: true);
        });
        return command;
    }

    private static IEnumerable<string> Report(string detachedAfter, StackProfile profile, SamplingSession session, OutputFormat format, string output)
    {
        var t = profile.Metadata.Totals;
        var inStacks = profile.TotalSamples;
        yield return string.Create(CultureInfo.InvariantCulture,
            $"{detachedAfter}: {t.Taken} samples of {session.Pids.Count} process{(session.Pids.Count == 1 ? "" : "es")}: {inStacks - t.CFramesOnly} with a Python stack, {t.NoPythonFrame} with no Python frame{(t.CFramesOnly > 0 ? $" ({t.CFramesOnly} of them in the profile by their C frames)" : "")}, {t.Truncated} truncated, {t.Lost} lost");
        if (session.Options.GilOnly)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"GIL: {inStacks} of {inStacks + t.WithoutGil} samples with a Python stack ({Share(inStacks, inStacks + t.WithoutGil)}) held it; the {t.WithoutGil} that did not are left out (--gil)");
        if (session.Native is { } native)
            yield return NativeLine(native, session.NativeLost, profile.Metadata.Mode == ProfileMode.Wall
                // Wall clock: the stacks are the CPU samples' and the switch-outs' (each of those a span of many samples).
                ? string.Create(CultureInfo.InvariantCulture, $"{inStacks - t.OffCpu + session.SwitchOuts} stacks taken ({inStacks - t.OffCpu} CPU samples, {session.SwitchOuts} at a context switch)")
                : string.Create(CultureInfo.InvariantCulture, $"{inStacks} samples"));
        if (session.Native is { } withKernel && session.Options.KernelStack)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"Kernel: {withKernel.WithKernelFrames} of the stacks taken had kernel frames (a system call, a fault or the kernel's own work; the others were in user code)");
        if (profile.Metadata.Mode == ProfileMode.Wall)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"Wall clock: {t.OffCpu} of the samples are time off the CPU (sleeping, waiting, preempted), from {session.SwitchOuts} stacks walked at a context switch{(session.Options.RunningTask ? $"; {t.TaskWaits} of them asyncio tasks suspended in an await, from {session.TaskCensuses} censuses of the tasks" : "")}");
        if (session.UnknownFrames > 0)
            yield return $"pyprobe: note: {session.UnknownFrames} frames are shown as unknown: their code objects were freed, or their process had exited, before they could be read";
        if (t.Lost > 0)
            yield return $"pyprobe: warning: {t.Lost} samples were lost because the ring buffer was full";
        if (session.Pids.Count == 0)
            yield return "pyprobe: warning: no Python process was found to sample; no profile was written";
        else
            yield return $"Wrote the {Describe(format)} to {output}";
    }

    /// <summary>How many samples got their C frames, and where the unwinding of the others stopped short.</summary>
    private static string NativeLine(NativeStacks native, ulong lost, string ofWhat)
    {
        var line = string.Create(CultureInfo.InvariantCulture, $"Native: {native.Unwound} of {ofWhat} with their C frames");
        var early = native.Ends.Where(e => e.Key != NativeUnwindStop.Complete && e.Value > 0).OrderByDescending(e => e.Value)
            .Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Value} {DescribeStop(e.Key)}")).ToList();
        if (native.Unpaired > 0) early.Add(string.Create(CultureInfo.InvariantCulture, $"{native.Unpaired} taken as a call crossed between C and Python: only their innermost C frames kept"));
        if (early.Count > 0) line += $" ({string.Join(", ", early)})";
        if (lost > 0) line += string.Create(CultureInfo.InvariantCulture, $"; {lost} stack copies lost (ring full): those samples have their Python frames only");
        return line;
    }

    private static string DescribeStop(NativeUnwindStop stop) => stop switch
    {
        NativeUnwindStop.OutsideCopy => "deeper than the stack copy",
        NativeUnwindStop.NoModule => "in code of no file (JIT)",
        NativeUnwindStop.NoUnwindInfo => "in code without unwind tables",
        NativeUnwindStop.Unsupported => "at an unwind rule not followed",
        NativeUnwindStop.MaxFrames => $"deeper than {NativeStacks.MaxFrames} C frames",
        NativeUnwindStop.BadAddress => "at a return address that is not code",
        _ => stop.ToString(),
    };

    private static string Describe(OutputFormat format) => format.Noun ?? format.Name;

    private static string Share(long part, long whole) => whole == 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{100.0 * part / whole:0.0}%");
}
