using System.Text.Json;
using Pyprobe.Python.Runtime;
using Pyprobe.Python.Stacks;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe dump -p PID [--format text|json]: the current Python stack of every thread, innermost
/// frame first, read through /proc/PID/mem with the runtime model (no BPF, nothing written, the
/// target keeps running).
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
            Description = "Also each frame's local variables, read from memory (None, bools, numbers, strs and bytes as repr() writes them, cut at 80 characters; containers by type and size; other objects by type and address).",
        };
        var output = new OutputOptions(OutputKind.Document);
        var command = new Command("dump", "Print the Python stack of every thread of a running process.");
        command.Options.Add(pid);
        command.Options.Add(locals);
        output.AddTo(command);
        command.SetAction(result =>
        {
            var pids = result.GetValue(pid) ?? [];
            if (pids.Length != 1) throw new UsageException("dump takes one -p PID");
            var (version, threads) = Read(pids[0], result.GetValue(locals));
            var text = new StringWriter { NewLine = "\n" };
            if (output.ReadFormat(result) == OutputFormat.Json)
                text.WriteLine(JsonSerializer.Serialize(new DumpDocument(pids[0], version,
                    threads.Select(t => new DumpThread(t.Tid, t.Name, t.HoldsGil, t.Running, t.Frames.Select((f, i) => new DumpFrame(f.Function, f.File, f.Line,
                        t.Locals?[i].Select(v => new DumpLocal(v.Name, v.Value)).ToList())).ToList())).ToList()),
                    DumpJsonContext.Default.DumpDocument));
            else
                WriteText(text, pids[0], version, threads);
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            sink.WriteUtf8(text.ToString());
            sink.Flush();
            return ExitCodes.Success;
        });
        return command;
    }

    private static (string Version, IReadOnlyList<ThreadStack> Threads) Read(int pid, bool locals)
    {
        try
        {
            using var process = CPythonProcess.Attach(pid);
            return (process.Binary.Version.ToString(), new StackReader(process).ReadAll(locals));
        }
        catch (Exception e) when (e is UnsupportedRuntimeException or ProcessMemoryException or UsdtException)
        {
            throw new CliException(e.Message);
        }
    }

    private static void WriteText(TextWriter w, int pid, string version, IReadOnlyList<ThreadStack> threads)
    {
        w.WriteLine($"Process {pid}: Python {version}");
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
            w.WriteLine($"Thread {t.Tid} ({t.Name}){gil}");
            for (int i = 0; i < t.Frames.Count; i++)
            {
                var f = t.Frames[i];
                w.WriteLine($"    {f.Function} ({f.File}:{f.Line})");
                foreach (var local in t.Locals?[i] ?? [])
                    w.WriteLine($"        {local.Name} = {local.Value}");
            }
        }
    }
}
