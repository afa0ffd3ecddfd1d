namespace Pyprobe.Cli.Commands.Running;

/// <summary>
/// The command line of a command that turns the events of a few probes into its own records (gc, imports): the
/// target, event and output options around its own, read in that order, then <see cref="ProbeStreamRun"/>.
/// </summary>
internal static class ProbeStreamCommand
{
    /// <param name="own">The command's own options, shown between the event options and the output options.</param>
    /// <param name="prepare">Reads and checks the command's own options and makes its handling (before privileges are checked).</param>
    public static Command Create(string name, string description, IReadOnlyList<string> probes, IReadOnlyList<Option> own, Func<ParseResult, ProbeStreamHandling> prepare)
    {
        var target = new TargetOptions();
        var output = new OutputOptions(OutputKind.EventStream);
        var events = new EventOptions();
        var command = new Command(name, description);
        target.AddTo(command);
        events.AddTo(command);
        foreach (var option in own) command.Options.Add(option);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var settings = events.Read(result);
            var handling = prepare(result);
            Privileges.RequireTracing(name);
            return ProbeStreamRun.Run(result, selection, settings, output, probes, name, handling);
        });
        return command;
    }
}
