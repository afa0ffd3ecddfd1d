using System.CommandLine;
using Pyprobe.Cli.Output;
using Pyprobe.Python.Probes;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe flow (-p PID... | --all [PATH] | -- CMD ARGS...): the call tree as it happens, per thread, from
/// function__entry and function__return (every event crosses to user space, in order, lost ones counted; the
/// depth and the durations come from per-thread stacks kept here). Built on trace's life cycle (TraceRun).
/// </summary>
internal static class FlowCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        var output = new OutputOptions();
        var tids = new Option<int[]>("--tid") { Description = "Only these threads (repeatable; filtered in the kernel).", HelpName = "TID", Arity = ArgumentArity.OneOrMore };
        var function = new Option<string?>("--function") { Description = "Only calls of functions whose name matches GLOB (depth then counts only those).", HelpName = "GLOB" };
        var file = new Option<string?>("--file") { Description = "Only calls of functions whose file name matches GLOB (depth then counts only those).", HelpName = "GLOB" };
        var time = new Option<TimeFormat>("--time")
        {
            Description = "Time column of text output: micros (HH:MM:SS.ffffff, default), seconds or none.",
            HelpName = "micros|seconds|none",
            DefaultValueFactory = _ => TimeFormat.Micros,
            CustomParser = r => r.Tokens.Count > 0 && Enum.TryParse<TimeFormat>(r.Tokens[^1].Value, ignoreCase: true, out var f) && !int.TryParse(r.Tokens[^1].Value, out _) ? f : Invalid(r),
        };
        var duration = new Option<double?>("--duration") { Description = "Stop after SECONDS.", HelpName = "SECONDS" };
        var noEntryGate = new Option<bool>("--no-entry-gate") { Description = "On Python 3.11, do not turn on function__entry: the target keeps full speed, but only returns are seen (no depth, no durations)." };
        var ringSize = new Option<int>("--ring-buffer-mb") { Description = "Kernel ring buffer size in MiB (a power of two, default 16).", HelpName = "MIB", DefaultValueFactory = _ => 16 };

        var command = new Command("flow",
            "Show the call tree as it happens: per thread, '->' on entry and '<-' on return, indented by depth, with each call's duration. " +
            "CPython's probes do not say why a function left: a yield, a return and an exception all show as '<-' (and each resume of a generator as a new '->'). " +
            "On 3.15 creating a generator is an entry without a return and throw() a return without an entry; pyprobe keeps the depth right. " +
            "On 3.11 pyprobe turns on function__entry, which slows call-heavy code about 10x; 3.12-3.14 have no function probes.");
        target.AddTo(command);
        foreach (var option in new Option[] { tids, function, file, time, duration, noEntryGate, ringSize }) command.Options.Add(option);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var seconds = result.GetValue(duration);
            if (seconds is <= 0) throw new UsageException("--duration must be positive");
            var mib = result.GetValue(ringSize);
            if (mib <= 0 || (mib & (mib - 1)) != 0 || mib > 1024) throw new UsageException("--ring-buffer-mb must be a power of two from 1 to 1024");
            Privileges.RequireTracing("flow");

            var settings = new TraceRun.Settings(
                [PythonProbeCatalog.Find("function__entry")!, PythonProbeCatalog.Find("function__return")!],
                result.GetValue(tids) is { Length: > 0 } t ? t : null,
                result.GetValue(function),
                result.GetValue(file),
                seconds is null ? null : TimeSpan.FromSeconds(seconds.Value),
                EntryGate: !result.GetValue(noEntryGate),
                (uint)mib << 20);
            var format = output.ReadFormat(result);
            var path = result.GetValue(output.File);
            return TraceRun.Run(selection, settings, clock => format == OutputFormat.Json
                    ? new FlowJsonFormatter()
                    : new FlowTextFormatter(clock.Clock, result.GetValue(time), clock.ManyProcesses),
                () => EventBuffer.Open(path, result.InvocationConfiguration.Output),
                result.InvocationConfiguration.Error);
        });
        return command;
    }

    private static TimeFormat Invalid(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"invalid --time '{(result.Tokens.Count > 0 ? result.Tokens[^1].Value : "")}': expected micros, seconds or none");
        return TimeFormat.Micros;
    }
}
