using Pyprobe.Cli.Commands.Trace;
using Pyprobe.Python.Events;

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
        var output = new OutputOptions(OutputKind.EventStream);
        var tids = SharedOptions.Tids();
        var function = new Option<string?>("--function") { Description = "Only calls of functions whose name matches GLOB (depth then counts only those).", HelpName = "GLOB" };
        var file = new Option<string?>("--file") { Description = "Only calls of functions whose file name matches GLOB (depth then counts only those).", HelpName = "GLOB" };
        var time = new Option<TimeFormat>("--time")
        {
            Description = "Time column of text output: micros (HH:MM:SS.ffffff, default), seconds or none.",
            HelpName = "micros|seconds|none",
            DefaultValueFactory = _ => TimeFormat.Micros,
            CustomParser = r => r.Tokens.Count > 0 && Enum.TryParse<TimeFormat>(r.Tokens[^1].Value, ignoreCase: true, out var f) && !int.TryParse(r.Tokens[^1].Value, out _) ? f : Invalid(r),
        };
        var duration = SharedOptions.Duration();
        var noEntryGate = new Option<bool>("--no-entry-gate") { Description = "On Python 3.11, do not turn on function__entry: the target keeps full speed, but only returns are seen (no depth, no durations)." };
        var ringSize = SharedOptions.RingBufferMb();
        var priority = ConsumerPriorities.Option();

        var command = new Command("flow",
            "Show the call tree as it happens: per thread, '->' on entry and '<-' on return, indented by depth, with each call's duration. " +
            "Each event names its code object (file, name, first line), as calls does; a return pairs with its entry by code object. " +
            "CPython's probes do not say why a function left: a yield, a return and an exception all show as '<-' (and each resume of a generator as a new '->' at its def line). " +
            "On 3.15 the entry its probe adds when a generator is created is left out, and throw() is a return without an entry; pyprobe keeps the depth right. " +
            "On 3.11 with probes pyprobe turns on function__entry, which slows call-heavy code about 10x; without function probes (3.12-3.14, or a build without them) " +
            "calls come from a uprobe on _PyEval_EvalFrameDefault, from 3.11 with the eval-frame hook set (-p only).");
        target.AddTo(command);
        foreach (var option in new Option[] { tids, function, file, time, duration, noEntryGate, ringSize, priority }) command.Options.Add(option);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var stopAfter = SharedOptions.ReadDuration(result, duration);
            var ringBytes = SharedOptions.ReadRingBytes(result, ringSize);
            Privileges.RequireTracing("flow");

            var settings = new TraceRun.Settings(
                [PythonProbeCatalog.Find("function__entry")!, PythonProbeCatalog.Find("function__return")!],
                SharedOptions.ReadTids(result, tids),
                result.GetValue(function),
                result.GetValue(file),
                stopAfter,
                EntryGate: !result.GetValue(noEntryGate),
                ringBytes,
                KeyFunctionsByCodeObject: true,
                Priority: result.GetValue(priority));
            var format = output.ReadFormat(result);
            var path = result.GetValue(output.File);
            var tree = new CallStacks();
            return TraceRun.Run(selection, settings, format, result.GetValue(time), writer => (in ProbeEvent e) => writer.Call(e, tree.Apply(e)),
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
