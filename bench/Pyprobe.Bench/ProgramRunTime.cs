namespace Pyprobe.Bench;

/// <summary>
/// run_time_ns and run_cnt of the BPF programs a process has attached (kernel.bpf_stats_enabled on), found through the
/// links it holds: a tracer closes its program fds once the links exist, so each program is opened by the id its link
/// names (BPF_PROG_GET_FD_BY_ID) and read from this process's fdinfo. Separates what the programs cost per event from
/// the uprobe trap around them.
/// </summary>
internal static unsafe class ProgramRunTime
{
    private const int ProgGetFdById = 13;

    public static (long RunTimeNs, long RunCount) OfProcess(int pid)
    {
        long time = 0, count = 0;
        var ids = new HashSet<uint>();
        try
        {
            foreach (var path in Directory.GetFiles($"/proc/{pid}/fdinfo"))
            {
                string text;
                try { text = File.ReadAllText(path); } catch (IOException) { continue; }
                var id = Field(text, "prog_id");
                if (id is not null) ids.Add(uint.Parse(id));
            }
        }
        catch (DirectoryNotFoundException) { }
        // union bpf_attr for BPF_PROG_GET_FD_BY_ID: prog_id, next_id, open_flags.
        var attr = stackalloc uint[4];
        foreach (var id in ids)
        {
            attr[0] = id;
            var fd = (int)Native.Syscall(Native.SysBpf, ProgGetFdById, (long)attr, 16);
            if (fd < 0) continue;
            try
            {
                var info = File.ReadAllText($"/proc/self/fdinfo/{fd}");
                time += long.Parse(Field(info, "run_time_ns") ?? "0");
                count += long.Parse(Field(info, "run_cnt") ?? "0");
            }
            finally
            {
                Native.Close(fd);
            }
        }
        return (time, count);
    }

    /// <summary>run_time_ns and run_cnt of a program this process holds open.</summary>
    public static (long RunTimeNs, long RunCount) OfProgramFd(int fd)
    {
        var info = File.ReadAllText($"/proc/self/fdinfo/{fd}");
        return (long.Parse(Field(info, "run_time_ns") ?? "0"), long.Parse(Field(info, "run_cnt") ?? "0"));
    }

    private static string? Field(string fdinfo, string key)
    {
        foreach (var line in fdinfo.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line.AsSpan(0, colon).Trim().SequenceEqual(key)) return line[(colon + 1)..].Trim();
        }
        return null;
    }
}
