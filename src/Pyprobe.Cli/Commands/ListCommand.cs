using System.CommandLine;
using Pyprobe.Cli.Output;
using Pyprobe.Cli.Targets;
using Pyprobe.Cli.Output.Formats;

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
        var path = new Argument<string?>("PATH")
        {
            Description = $"Interpreter or libpython file (default: the {ProbeFileResolver.DefaultInterpreter} on PATH).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        // System.CommandLine hands an unknown "--flag" to a free argument; say what it is.
        path.Validators.Add(r =>
        {
            if (r.Tokens is [{ Value: ['-', _, ..] value }])
                r.AddError($"{CliApp.UnknownOption} '{value}'");
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

            var file = pids.Length > 0 ? ProbeFileResolver.FromProcess(pids[0]) : ProbeFileResolver.FromPath(pathValue);
            var listing = ProbeListing.From(file);

            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var text = new StringWriter { NewLine = "\n" };
            if (output.ReadFormat(result) == OutputFormat.Json)
                ProbeListJsonWriter.Write(text, listing);
            else
                ProbeListTextWriter.Write(text, listing, result.GetValue(verbose));
            sink.WriteUtf8(text.ToString());
            return ExitCodes.Success;
        });
        return command;
    }
}
