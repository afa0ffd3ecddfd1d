using Pyprobe.Cli.Targets;
using Pyprobe.Python.Runtime;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe list [PATH] | -p PID [-v] [--format text|json] [-o FILE]:
/// the USDT probes of an interpreter file or of a running Python, in bpftrace's
/// "usdt:PATH:python:NAME" form; -v adds arguments, sites, semaphores and whether each probe fires
/// on that CPython version.
/// </summary>
internal static class ListCommand
{
    public static Command Create()
    {
        var path = SharedOptions.RejectingOptions(new Argument<string?>("PATH")
        {
            Description = $"Interpreter or libpython file (default: the {ProbeFileResolver.DefaultInterpreter} on PATH).",
            Arity = ArgumentArity.ZeroOrOne,
        });
        var pid = SharedOptions.Pid();
        pid.Description = "List the probes of the Python running as PID (the file that carries them, as the process sees it).";
        var verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "Show arguments, sites, semaphores and whether each probe fires on this CPython version.",
        };
        var output = new OutputOptions(OutputKind.Document);

        var command = new Command("list", "List the USDT probes of a CPython interpreter or a running Python process.");
        command.Arguments.Add(path);
        command.Options.Add(pid);
        command.Options.Add(verbose);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var pathValue = result.GetValue(path);
            var pids = result.GetValue(pid) ?? [];
            if (pids.Length > 0 && pathValue is not null)
                throw new UsageException("give either PATH or -p PID, not both");
            if (pids.Distinct().Count() > 1)
                throw new UsageException("list takes one -p PID");

            ProbeFile file;
            var text = new StringWriter { NewLine = "\n" };
            try
            {
                file = pids.Length > 0 ? ProbeFileResolver.FromProcess(pids[0]) : ProbeFileResolver.FromPath(pathValue);
            }
            catch (CliException e) when (result.GetValue(verbose) && output.ReadFormat(result) != OutputFormat.Json && RuntimeWithoutProbes(pids, pathValue) is { } runtime)
            {
                // Without probes there is nothing to list, but function events still have a source: say which.
                var target = new TraceTarget(runtime.OpenPath, runtime.DisplayPath, UsdtBinary.Open(runtime.OpenPath), [], runtime.Version);
                ProbeListTextWriter.WriteWithoutProbes(text, pids.Length > 0 ? $"{runtime.DisplayPath} (pid {pids[0]})" : runtime.DisplayPath,
                    $"CPython {runtime.Version}", "built without --with-dtrace", ProbeListing.FunctionEventsOf(target));
                using var plain = output.Open(result, result.InvocationConfiguration.Output);
                plain.WriteUtf8(text.ToString());
                _ = e;
                return ExitCodes.Success;
            }
            var listing = ProbeListing.From(file);

            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            if (output.ReadFormat(result) == OutputFormat.Json)
                ProbeListJsonWriter.Write(text, listing);
            else
                ProbeListTextWriter.Write(text, listing, result.GetValue(verbose));
            sink.WriteUtf8(text.ToString());
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The CPython runtime of the process, or of the file when it holds one (a libpython, a static interpreter); null otherwise.</summary>
    private static CPythonBinary? RuntimeWithoutProbes(int[] pids, string? path)
    {
        try
        {
            if (pids.Length > 0)
            {
                using var process = CPythonProcess.Attach(pids[0]);
                return process.Binary;
            }
            if (path is null || !File.Exists(path)) return null;
            var real = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
            var elf = ElfImage.Open(real);
            return CPythonBinary.DefinesRuntime(elf) ? CPythonBinary.FromElf(elf, real, path) : null;
        }
        catch (Exception e) when (e is UsdtException or IOException or UnauthorizedAccessException or UnsupportedRuntimeException)
        {
            return null;
        }
    }
}
