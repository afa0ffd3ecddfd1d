using Pyprobe.Cli.Commands.Trace;
using Pyprobe.Cli.Targets;
using Pyprobe.Bpf.Launch;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe trace [PROBE...] (-p PID... | --all [PATH] | -- CMD ARGS...): prints every event of the
/// chosen CPython probes, one line each, like the seed's bpftrace one-liner but for every probe and
/// every version, with lost events counted.
/// </summary>
internal static class TraceCommand
{
    public static Command Create()
    {
        var probes = SharedOptions.RejectingOptions(new Argument<string[]>("PROBE")
        {
            Description = "Probes to trace: names or globs (gc__*, *). Default: function__entry.",
            Arity = ArgumentArity.ZeroOrMore,
        });
        var target = new TargetOptions();
        var output = new OutputOptions(OutputKind.EventStream | OutputKind.Capture);
        var tids = SharedOptions.Tids();
        var function = new Option<string?>("--function") { Description = "Only function/line events whose function name matches GLOB.", HelpName = "GLOB" };
        var file = new Option<string?>("--file") { Description = "Only function/line events whose file name matches GLOB.", HelpName = "GLOB" };
        var time = new Option<TimeFormat>("--time")
        {
            Description = "Time column of text output: seconds (HH:MM:SS, default), micros or none.",
            HelpName = "seconds|micros|none",
            CustomParser = r => r.Tokens.Count > 0 && Enum.TryParse<TimeFormat>(r.Tokens[^1].Value, ignoreCase: true, out var f) ? f : Invalid(r),
        };
        var duration = SharedOptions.Duration();
        var noEntryGate = new Option<bool>("--no-entry-gate") { Description = "On Python 3.11, do not turn on function__entry (keeps the target at full speed; entries are then not seen)." };
        var ringSize = SharedOptions.RingBufferMb();
        var priority = ConsumerPriorities.Option();

        var command = new Command("trace", "Print every event of CPython's USDT probes (default function__entry), lossless, with lost events counted. " +
            "Where the function probes do not fire (3.12-3.14, or a build without them), function events come from a uprobe on _PyEval_EvalFrameDefault.");
        command.Arguments.Add(probes);
        target.AddTo(command);
        var noWrite = new Option<bool>("--no-write") { Description = "Never write into the target (function events on 3.11-3.14 need its eval-frame hook set; without it: USDT where it fires)." };
        foreach (var option in new Option[] { tids, function, file, time, duration, noEntryGate, noWrite, ringSize, priority }) command.Options.Add(option);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var format = output.ReadFormat(result);
            var selected = ProbeSelector.Select(result.GetValue(probes) ?? [], "function__entry");
            if (format.PairsCalls) selected = WithBothCallProbes(selected);
            var selection = target.Read(result);
            var stopAfter = SharedOptions.ReadDuration(result, duration);
            var ringBytes = SharedOptions.ReadRingBytes(result, ringSize);
            Privileges.RequireTracing("trace");
            LaunchPhases.Mark("options read, privileges checked");

            var settings = new TraceRun.Settings(
                selected,
                SharedOptions.ReadTids(result, tids),
                result.GetValue(function),
                result.GetValue(file),
                stopAfter,
                !result.GetValue(noEntryGate),
                ringBytes,
                AllowHookWrite: !result.GetValue(noWrite),
                Priority: result.GetValue(priority));
            var path = result.GetValue(output.File);
            if (format.Capture)
                return TraceRun.Capture(selection, settings, result.GetValue(time), path, result.InvocationConfiguration.Error);
            return TraceRun.Run(selection, settings, format, result.GetValue(time), writer => (in ProbeEvent e) => writer.Probe(e),
                () => EventBuffer.Open(path, result.InvocationConfiguration.Output),
                result.InvocationConfiguration.Error);
        });
        return command;
    }

    /// <summary>For a format that draws calls as slices: function__entry and function__return together, or neither.</summary>
    private static IReadOnlyList<PythonProbe> WithBothCallProbes(IReadOnlyList<PythonProbe> selected)
    {
        if (!selected.Any(p => p.Name is "function__entry" or "function__return")) return selected;
        var both = selected.ToList();
        foreach (var name in new[] { "function__entry", "function__return" })
            if (!both.Any(p => p.Name == name)) both.Add(PythonProbeCatalog.Find(name)!);
        return both;
    }

    private static TimeFormat Invalid(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"invalid --time '{(result.Tokens.Count > 0 ? result.Tokens[^1].Value : "")}': expected seconds, micros or none");
        return TimeFormat.Seconds;
    }
}
