namespace Pyprobe.Usdt;

/// <summary>
/// Where a thread is in the kernel, as the kernel tells root in /proc/PID/task/TID/stack: the functions of the system
/// call or wait it is in, innermost first (empty for a thread running user code). What <c>dump --kernel</c> adds under a
/// blocked thread's C frames: the pipe, socket, futex or epoll it sleeps in.
/// </summary>
public static class TaskKernelStack
{
    /// <summary>(function, module) per frame, innermost first; "kernel" for the kernel's own. Empty when not readable.</summary>
    public static IReadOnlyList<(string Function, string Module)> Read(int pid, int tid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/task/{tid}/stack");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        return Parse(text);
    }

    /// <summary>Lines of "[&lt;0&gt;] pipe_read+0x2b1/0x3f0" or "[&lt;0&gt;] ext4_file_read_iter+0x5c/0x1a0 [ext4]".</summary>
    public static IReadOnlyList<(string Function, string Module)> Parse(string text)
    {
        var frames = new List<(string, string)>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !fields[0].StartsWith('[')) continue;
            var symbol = fields[1];
            var plus = symbol.IndexOf('+');
            var function = plus > 0 ? symbol[..plus] : symbol;
            var module = fields.Length > 2 ? fields[2].Trim('[', ']') : "kernel";
            frames.Add((function, module));
        }
        return frames;
    }
}
