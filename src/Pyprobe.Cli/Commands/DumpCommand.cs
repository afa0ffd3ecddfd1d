using System.Globalization;
using System.Text.Json;
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
        var output = new OutputOptions(OutputKind.Document);
        var command = new Command("dump", "Print the Python stack of every thread of a running process.");
        command.Options.Add(pid);
        command.Options.Add(locals);
        command.Options.Add(native);
        command.Options.Add(kernel);
        output.AddTo(command);
        command.SetAction(result =>
        {
            var pids = result.GetValue(pid) ?? [];
            if (pids.Length != 1) throw new UsageException("dump takes one -p PID");
            var withKernel = result.GetValue(kernel);
            var (version, threads, paused) = Read(pids[0], result.GetValue(locals), result.GetValue(native) || withKernel, withKernel);
            var text = new StringWriter { NewLine = "\n" };
            if (output.ReadFormat(result) == OutputFormat.Json)
                text.WriteLine(DumpJson.Serialize(new DumpDocument(pids[0], version,
                    threads.Select(t => new DumpThread(t.Tid, t.Name, t.HoldsGil, t.Running, t.Frames.Select((f, i) => new DumpFrame(f.Function, f.File, f.Line,
                        f.Kind == FrameKind.Native, f.Kind == FrameKind.Native ? null : t.Locals?[i].Select(v => new DumpLocal(v.Name, v.Value, v.IsArgument)).ToList())).ToList(),
                        !t.KnownToPython)).ToList(),
                    paused?.TotalMilliseconds)));
            else
                WriteText(text, pids[0], version, threads, paused);
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            sink.WriteUtf8(text.ToString());
            sink.Flush();
            return ExitCodes.Success;
        });
        return command;
    }

    private static (string Version, IReadOnlyList<ThreadStack> Threads, TimeSpan? Paused) Read(int pid, bool locals, bool native, bool kernel)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            var reader = new StackReader(process);
            var threads = reader.ReadAll(locals, native, kernel);
            return (process.Binary.Version.ToString(), threads, reader.Paused);
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or ProcessMemoryException or UsdtException)
        {
            throw new CliException(e.Message);
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
            for (int i = 0; i < t.Frames.Count; i++)
            {
                var f = t.Frames[i];
                w.WriteLine($"    {f.Label}");
                // As py-spy dump --locals: the parameters, then the other variables, each under its heading.
                var frameLocals = t.Locals?[i] ?? [];
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
}
