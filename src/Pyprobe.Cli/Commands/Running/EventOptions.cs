namespace Pyprobe.Cli.Commands.Running;

/// <summary>Options gc, imports and audit share with trace: --tid, --duration, --ring-buffer-mb.</summary>
internal sealed class EventOptions
{
    public Option<int[]> Tids { get; } = SharedOptions.Tids();
    public Option<double?> Duration { get; } = SharedOptions.Duration();
    public Option<int> RingSize { get; } = SharedOptions.RingBufferMb();
    public Option<ConsumerPriority> Priority { get; } = ConsumerPriorities.Option();

    public void AddTo(Command command)
    {
        command.Options.Add(Tids);
        command.Options.Add(Duration);
        command.Options.Add(RingSize);
        command.Options.Add(Priority);
    }

    public EventSettings Read(ParseResult result)
    {
        var duration = SharedOptions.ReadDuration(result, Duration);
        var ringBytes = SharedOptions.ReadRingBytes(result, RingSize);
        return new EventSettings(SharedOptions.ReadTids(result, Tids), duration, ringBytes, result.GetValue(Priority));
    }
}

/// <summary>The values of <see cref="EventOptions"/>.</summary>
internal sealed record EventSettings(IReadOnlyList<int>? Tids, TimeSpan? Duration, uint RingBytes, ConsumerPriority Priority);
