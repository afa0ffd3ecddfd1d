using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Output.Raw;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe convert FILE [--format text|json] [-o OUT] [--time …]: turns a raw capture (trace --format raw) into the
/// text or JSON lines the live trace would have written, byte for byte (same records, same clock, same formatters).
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var file = SharedOptions.RejectingOptions(new Argument<string>("FILE") { Description = "A raw capture written by pyprobe trace --format raw -o FILE." });
        var output = new OutputOptions(OutputKind.EventStream);
        var time = new Option<TimeFormat?>("--time")
        {
            Description = "Time column of text output: seconds, micros or none (default: the trace's own --time).",
            HelpName = "seconds|micros|none",
            CustomParser = r => r.Tokens.Count > 0 && Enum.TryParse<TimeFormat>(r.Tokens[^1].Value, ignoreCase: true, out var f) ? f : Invalid(r),
        };
        var command = new Command("convert", "Turn a raw capture (trace --format raw) into text or JSON lines, or a Chrome trace.");
        command.Arguments.Add(file);
        command.Options.Add(time);
        output.AddTo(command);
        command.SetAction(result =>
        {
            var path = result.GetValue(file)!;
            using var capture = RawCaptureReader.Open(path);
            var header = capture.Header;
            using var buffer = output.Open(result, result.InvocationConfiguration.Output);
            var clock = new EventClock(header.MonotonicToUnixNs, header.LocalOffsetNs);
            var writer = EventStreamWriters.For(output.ReadFormat(result), new EventStreamContext(buffer, clock, result.GetValue(time) ?? header.Time, header.ManyProcesses));
            ProbeEventHandler handler = (in ProbeEvent e) =>
            {
                writer.Probe(e);
                buffer.FlushIfFull();
            };
            try
            {
                capture.ReadAll(handler);
                // No stop time is recorded: a format that closes open calls (chrome) closes them at the last event.
                writer.End(new EventStreamEnd(0, 0));
            }
            catch (UsdtException e)
            {
                throw new CliException($"{path}: damaged raw capture ({e.Message})");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static TimeFormat? Invalid(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"invalid --time '{(result.Tokens.Count > 0 ? result.Tokens[^1].Value : "")}': expected seconds, micros or none");
        return null;
    }
}
