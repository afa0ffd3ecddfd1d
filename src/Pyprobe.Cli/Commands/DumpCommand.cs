using System.Globalization;
using System.Text.Json;
using Pyprobe.Python.Asyncio;
using Pyprobe.Python.Profiling;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe dump -p PID [--locals] [--native] [--kernel] [--format text|json]: the current Python stack of every thread,
/// innermost frame first, read through /proc/PID/mem with the runtime model (no BPF, nothing written, the
/// target keeps running); with --native the C frames too, which holds the process still while they are read; with
/// --kernel the kernel's frames of each thread under them (/proc/PID/task/TID/stack).
/// </summary>
internal static class DumpCommand
{
    public static Command Create()
    {
        var pid = SharedOptions.Pid();
        pid.Description = "The Python process to dump.";
        pid.Required = true;
        var locals = new Option<bool>("--locals", "-l")
        {
            Description = "Also each frame's arguments and other local variables, read from memory (None, bools, numbers, strs and bytes as repr() writes them, cut at 80 characters; containers by type and size; other objects by type and address).",
        };
        var native = new Option<bool>("--native", "-n")
        {
            Description = "Also the C frames of each thread (extension modules, libraries, the interpreter), merged with its Python frames, and the threads Python does not know (a C library's workers) by their C frames. Holds the process still with ptrace while its stacks are read (a few milliseconds; the time is printed); a process that a debugger already traces is refused.",
        };
        var kernel = new Option<bool>("--kernel", "-k")
        {
            Description = "Also where each thread is in the kernel, under its C frames (implies --native): the system call or wait it is blocked in (a pipe or socket read, a futex, epoll), as the kernel tells root in /proc/PID/task/TID/stack; none for a thread running user code.",
        };
        var tasks = new Option<bool>("--tasks", "-t")
        {
            Description = "Also every pending asyncio task: its name, the coroutines it is suspended in (innermost first) and what it waits for (other tasks, a gather's children, a future), as python -m asyncio ps shows from 3.14, on 3.8-3.15. Read from memory like the stacks; nothing is called in the process.",
        };
        var output = new OutputOptions(OutputKind.Document);
        var command = new Command("dump", "Print the Python stack of every thread of a running process.");
        command.Options.Add(pid);
        command.Options.Add(locals);
        command.Options.Add(native);
        command.Options.Add(kernel);
        command.Options.Add(tasks);
        output.AddTo(command);
        command.SetAction(result =>
        {
            var pids = result.GetValue(pid) ?? [];
            if (pids.Length != 1) throw new UsageException("dump takes one -p PID");
            var withKernel = result.GetValue(kernel);
            var (version, threads, paused, asyncTasks) = Read(pids[0], result.GetValue(locals), result.GetValue(native) || withKernel, withKernel, result.GetValue(tasks));
            var text = new StringWriter { NewLine = "\n" };
            if (output.ReadFormat(result) == OutputFormat.Json)
                text.WriteLine(DumpJson.Serialize(new DumpDocument(pids[0], version,
                    threads.Select(t => new DumpThread(t.Tid, t.Name, t.HoldsGil, t.Running, t.Frames.Select((f, i) => new DumpFrame(f.Function, f.File, f.Line,
                        f.Kind == FrameKind.Native, f.Kind == FrameKind.Native ? null : t.Locals?[i].Select(v => new DumpLocal(v.Name, v.Value, v.IsArgument)).ToList())).ToList(),
                        !t.KnownToPython)).ToList(),
                    paused?.TotalMilliseconds, asyncTasks?.Select(ToJson).ToList())));
            else
            {
                WriteText(text, pids[0], version, threads, paused);
                if (asyncTasks is not null) WriteTasks(text, asyncTasks);
            }
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            sink.WriteUtf8(text.ToString());
            sink.Flush();
            return ExitCodes.Success;
        });
        return command;
    }

    private static (string Version, IReadOnlyList<ThreadStack> Threads, TimeSpan? Paused, IReadOnlyList<AsyncTask>? Tasks) Read(int pid, bool locals, bool native, bool kernel, bool tasks)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            var reader = new StackReader(process);
            // Tasks first: the layout check refuses an unknown version before any thread is held.
            var taskReader = tasks ? new AsyncTaskReader(process, reader) : null;
            var threads = reader.ReadAll(locals, native, kernel);
            return (process.Binary.Version.ToString(), threads, reader.Paused, taskReader?.ReadAll(locals, reader.TidsByIdent));
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or ProcessMemoryException or UsdtException)
        {
            throw new CliException(e.Message);
        }
    }

    private static string Hex(ulong id) => $"0x{id:x}";

    private static DumpTask ToJson(AsyncTask t) => new(Hex(t.Id), t.Name, t.Tid, StateName(t.State), t.WaitsFor.Select(Hex).ToList(), t.WaitsOn,
        t.Frames.Select((f, i) => new DumpFrame(f.Function, f.File, f.Line, false, t.Locals?[i].Select(v => new DumpLocal(v.Name, v.Value, v.IsArgument)).ToList())).ToList());

    private static string StateName(AsyncTaskState state) => state switch
    {
        AsyncTaskState.Running => "running",
        AsyncTaskState.NotStarted => "not_started",
        _ => "waiting",
    };

    /// <summary>Each task under its name, what it waits for in brackets, then its coroutines innermost first.</summary>
    private static void WriteTasks(TextWriter w, IReadOnlyList<AsyncTask> tasks)
    {
        w.WriteLine();
        w.WriteLine(tasks.Count switch { 0 => "No asyncio task", 1 => "1 asyncio task", _ => $"{tasks.Count} asyncio tasks" });
        // A name given twice (or a task finished meanwhile) is told by its id.
        var names = tasks.GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.Count());
        var byId = tasks.ToDictionary(t => t.Id);
        string Label(ulong id) => byId.TryGetValue(id, out var t) ? names[t.Name] > 1 ? $"{t.Name} ({Hex(id)})" : t.Name : Hex(id);
        // Loops on more than one thread: each task says whose.
        var threads = tasks.Select(t => t.Tid).Distinct().Count() > 1;
        foreach (var t in tasks)
        {
            var what = t.State switch
            {
                AsyncTaskState.Running => "running: its stack is its thread's",
                AsyncTaskState.NotStarted => "not started",
                _ when t.WaitsFor.Count > 0 => "waiting for " + string.Join(", ", t.WaitsFor.Select(Label)),
                _ when t.WaitsOn is "Future" => "waiting on a Future",
                _ => t.WaitsOn is { } other ? $"waiting on {other}" : "waiting",
            };
            w.WriteLine();
            var thread = !threads ? "" : t.Tid is int tid ? $"thread {tid}, " : "thread unknown, "; // a loop not running, or one without _thread_id
            w.WriteLine($"Task {Label(t.Id)} ({thread}{what})");
            WriteFrames(w, t.Frames, t.Locals);
        }
    }

    private static void WriteText(TextWriter w, int pid, string version, IReadOnlyList<ThreadStack> threads, TimeSpan? paused)
    {
        w.WriteLine(paused is { } held
            ? string.Create(CultureInfo.InvariantCulture, $"Process {pid}: Python {version} (held still {held.TotalMilliseconds:0.0} ms to read its native stacks)")
            : $"Process {pid}: Python {version}");
        foreach (var t in threads)
        {
            // The GIL where the version tells; else, or without it, what the kernel says: a thread running without the GIL
            // is in C code that released it (hashing, compression, a numpy kernel), not idle.
            var gil = (t.HoldsGil, t.Running) switch
            {
                (true, _) => " (holds the GIL)",
                (false, true) => " (running without the GIL)",
                (null, true) => " (running)",
                (_, false) or (false, null) => " (idle)",
                _ => "",
            };
            w.WriteLine();
            w.WriteLine(t.KnownToPython ? $"Thread {t.Tid} ({t.Name}){gil}" : $"Thread {t.Tid} ({t.Name}){gil}, C code only: not a Python thread");
            WriteFrames(w, t.Frames, t.Locals);
        }
    }

    /// <summary>Frames innermost first; with locals, as py-spy dump --locals: the parameters, then the other variables, each under its heading.</summary>
    private static void WriteFrames(TextWriter w, IReadOnlyList<StackFrame> frames, IReadOnlyList<IReadOnlyList<LocalVariable>>? locals)
    {
        for (int i = 0; i < frames.Count; i++)
        {
            w.WriteLine($"    {frames[i].Label}");
            var frameLocals = locals?[i] ?? [];
            foreach (var (heading, group) in new[] { ("Arguments:", frameLocals.Where(v => v.IsArgument)), ("Locals:", frameLocals.Where(v => !v.IsArgument)) })
            {
                var first = true;
                foreach (var local in group)
                {
                    if (first) w.WriteLine($"        {heading}");
                    first = false;
                    w.WriteLine($"            {local.Name} = {local.Value}");
                }
            }
        }
    }
}
