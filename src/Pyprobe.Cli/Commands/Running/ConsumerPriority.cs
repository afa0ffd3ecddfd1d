using Pyprobe.Bpf.Sys;
using Pyprobe.Python.Sessions;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>How pyprobe's event-reading threads are scheduled while it streams events (--priority).</summary>
internal enum ConsumerPriority
{
    /// <summary>As started, raised to nice <see cref="ConsumerPriorities.HighNice"/> only while the reader falls behind (the default; see <see cref="ReaderPriorityGovernor"/>).</summary>
    Auto,

    /// <summary>As started: the traced programs and pyprobe share the CPUs by their nice values.</summary>
    Normal,

    /// <summary>Nice <see cref="ConsumerPriorities.HighNice"/> for the whole run.</summary>
    High,

    /// <summary>SCHED_FIFO priority <see cref="ConsumerPriorities.RealtimePriority"/>, like perf record --realtime.</summary>
    Realtime,
}

/// <summary>
/// Raises the scheduling priority of the threads that drain the ring and write the output, and only those. When the
/// traced programs keep every CPU busy, a normal-priority reader gets one share among many and the ring overflows;
/// a raised reader runs whenever events wait, so the programs give up exactly the CPU time their events cost to
/// read. Each thread gets reset-on-fork, so nothing started from them inherits the priority; nothing needs
/// restoring because the threads end with pyprobe.
/// </summary>
internal static class ConsumerPriorities
{
    /// <summary>The nice value of --priority high: weight 9548 against a normal program's 1024 (sched(7)).</summary>
    public const int HighNice = -10;

    /// <summary>The lowest real-time priority: ahead of every normal program, behind every real-time one.</summary>
    public const int RealtimePriority = 1;

    public static Option<ConsumerPriority> Option() => new("--priority")
    {
        Description = $"Scheduling of pyprobe's event-reading and writing threads: auto (default: as started, nice {HighNice} while a quarter of the ring waits unread), " +
            $"high (nice {HighNice} throughout), realtime (SCHED_FIFO {RealtimePriority}) or normal. When the traced programs keep every CPU busy, a raised reader keeps up " +
            "with them instead of losing events; they then give up the CPU time their events cost to read.",
        HelpName = "auto|high|realtime|normal",
        DefaultValueFactory = _ => ConsumerPriority.Auto,
        CustomParser = r => r.Tokens.Count > 0 && Enum.TryParse<ConsumerPriority>(r.Tokens[^1].Value, ignoreCase: true, out var p) && !int.TryParse(r.Tokens[^1].Value, out _) ? p : Invalid(r),
    };

    /// <summary>
    /// Applies <paramref name="priority"/> to <paramref name="threads"/> (kernel thread ids of this process) and
    /// returns the note that says so, or why it could not (then every thread stays as it was started); null for normal.
    /// </summary>
    public static string? Apply(ConsumerPriority priority, IReadOnlyList<int> threads)
    {
        if (priority is ConsumerPriority.Normal or ConsumerPriority.Auto) return null;
        try
        {
            Raise(priority, threads);
        }
        catch (SyscallException e)
        {
            return $"pyprobe: note: cannot raise the priority of pyprobe's event reader ({Refusal(e)}); it reads at normal priority";
        }
        var how = priority == ConsumerPriority.Realtime ? $"at real-time priority (SCHED_FIFO {RealtimePriority})" : $"at nice {HighNice}";
        return $"pyprobe: note: pyprobe reads events {how}, ahead of the traced programs when they keep the CPUs busy; they give up the CPU time their events cost (--priority normal: no change)";
    }

    /// <summary>
    /// Puts <paramref name="threads"/> under <paramref name="priority"/> (<see cref="ConsumerPriority.High"/> or
    /// <see cref="ConsumerPriority.Realtime"/>) with reset-on-fork, so nothing they start inherits it. Throws
    /// <see cref="SyscallException"/>: without CAP_SYS_NICE the first raise fails and nothing has changed
    /// (reset-on-fork alone is harmless); with it, no later call fails: there is nothing half-applied to undo.
    /// </summary>
    public static void Raise(ConsumerPriority priority, IReadOnlyList<int> threads)
    {
        foreach (var tid in threads)
        {
            if (priority == ConsumerPriority.Realtime) ThreadScheduling.SetPolicy(tid, SchedulingPolicy.Fifo, RealtimePriority);
            else
            {
                ThreadScheduling.SetPolicy(tid, SchedulingPolicy.Normal, 0);
                ThreadScheduling.SetNice(tid, HighNice);
            }
        }
    }

    /// <summary>Why <see cref="Raise"/> failed, for a note ("…; it needs CAP_SYS_NICE" when that is the reason).</summary>
    public static string Refusal(SyscallException e) =>
        $"{e.Message}{(e.Is(Errno.EPERM) || e.Is(Errno.EACCES) ? "; it needs CAP_SYS_NICE" : "")}";

    /// <summary>
    /// Puts the calling thread (the one that drains <paramref name="session"/>'s ring) and the output's writer thread
    /// (<paramref name="writerThread"/>) under <paramref name="priority"/>: a fixed one now, with its note on
    /// <paramref name="stderr"/>; for auto, the governor the run consults on every poll.
    /// </summary>
    public static ReaderPriorityGovernor? Start(ConsumerPriority priority, int? writerThread, IEventSession session, TextWriter stderr)
    {
        IReadOnlyList<int> threads = [ThreadScheduling.CurrentThreadId(), .. writerThread is { } writer ? [writer] : Array.Empty<int>()];
        if (priority == ConsumerPriority.Auto) return new ReaderPriorityGovernor(threads, session);
        if (Apply(priority, threads) is { } note) stderr.WriteLine(note);
        return null;
    }

    private static ConsumerPriority Invalid(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"invalid --priority '{(result.Tokens.Count > 0 ? result.Tokens[^1].Value : "")}': expected auto, high, realtime or normal");
        return ConsumerPriority.Normal;
    }
}
