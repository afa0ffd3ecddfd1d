using Pyprobe.Cli.Output.CallStatistics;
using Pyprobe.Cli.Output.EventStream;

namespace Pyprobe.Cli.Output.Formats;

/// <summary>The kinds of output a command writes; a format serves some of them. Flags: a command may take several (trace: events or a capture).</summary>
[Flags]
internal enum OutputKind
{
    /// <summary>trace, flow, gc, imports, audit: events in order (<see cref="IEventStreamWriter"/>).</summary>
    EventStream = 1,
    /// <summary>calls and top's plain output (<see cref="ICallStatsWriter"/>).</summary>
    CallStatistics = 2,
    /// <summary>stat's per-process rates (<see cref="IStatWriter"/>).</summary>
    Rates = 4,
    /// <summary>list and dump: one document, which the command writes itself in text or JSON.</summary>
    Document = 8,
    /// <summary>record: a finished profile written as one file (<see cref="Profiles.IProfileWriter"/>).</summary>
    Profile = 16,
    /// <summary>trace's binary capture: the ring's records as they come, decoded later by pyprobe convert (Output/Raw).</summary>
    Capture = 32,
}

/// <summary>
/// One <c>--format</c> value, described by the file that implements it: its name, a few words for the help, and
/// a factory for each kind of output it serves (null where it serves none). The parser, the help line and the
/// writers' selection all read these descriptors (<see cref="OutputFormats"/>); nothing else names a format.
/// </summary>
internal sealed class OutputFormat
{
    /// <summary>What the user types after --format.</summary>
    public required string Name { get; init; }

    /// <summary>For the help, after the name ("Chrome trace events, for Perfetto and speedscope").</summary>
    public string? Summary { get; init; }

    public Func<EventStreamContext, IEventStreamWriter>? EventStream { get; init; }

    public Func<CallStatsContext, ICallStatsWriter>? CallStatistics { get; init; }

    public Func<EventBuffer, IStatWriter>? Rates { get; init; }

    public Func<Profiles.IProfileWriter>? Profile { get; init; }

    /// <summary>What record's last line calls the file ("flame graph"); the name when null.</summary>
    public string? Noun { get; init; }

    /// <summary>list and dump can write their document in it (text and JSON).</summary>
    public bool Document { get; init; }

    /// <summary>
    /// The format draws a call as one slice from entry to return, so trace takes function__entry and
    /// function__return together (an entry alone would be a slice that never ends).
    /// </summary>
    public bool PairsCalls { get; init; }

    /// <summary>The run's records written as they come, nothing decoded (trace only; needs a file).</summary>
    public bool Capture { get; init; }

    /// <summary>Whether the format serves any of <paramref name="kinds"/>.</summary>
    public bool Serves(OutputKind kinds) =>
        ((kinds & OutputKind.EventStream) != 0 && EventStream is not null)
        || ((kinds & OutputKind.CallStatistics) != 0 && CallStatistics is not null)
        || ((kinds & OutputKind.Rates) != 0 && Rates is not null)
        || ((kinds & OutputKind.Document) != 0 && Document)
        || ((kinds & OutputKind.Profile) != 0 && Profile is not null)
        || ((kinds & OutputKind.Capture) != 0 && Capture);

    /// <summary>The default of every command.</summary>
    public static OutputFormat Text => TextFormat.Format;

    /// <summary>The one list and dump test for (their documents are written in place).</summary>
    public static OutputFormat Json => JsonFormat.Format;

    public override string ToString() => Name;
}
