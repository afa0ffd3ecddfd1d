using Pyprobe.Bpf.Links;

namespace Pyprobe.Bpf.Tests.Links;

/// <summary>
/// LinkCloser's order: links that may close alongside each other do so at the same time (each waits here until all of
/// its group have begun closing, which closing them one by one would never let happen), and a link of another kind
/// closes after everything before it and before everything after it.
/// </summary>
public class LinkCloserTests
{
    private sealed class Log
    {
        private readonly List<string> _events = [];
        public void Add(string e) { lock (_events) _events.Add(e); }
        public List<string> Events { get { lock (_events) return [.. _events]; } }
    }

    private sealed class Alongside(string name, Log log, Barrier group) : IClosesAlongside
    {
        public void Dispose()
        {
            log.Add($"{name} begins");
            // Every member of the group must be closing at once for this to return true.
            log.Add(group.SignalAndWait(TimeSpan.FromSeconds(10)) ? $"{name} met its group" : $"{name} closed alone");
            log.Add($"{name} ends");
        }
    }

    private sealed class InPlace(string name, Log log) : IDisposable
    {
        public void Dispose() => log.Add($"{name} closes");
    }

    [Fact]
    public void NeighboursThatMayCloseTogetherDoAndOthersKeepTheirPlace()
    {
        var log = new Log();
        var firstGroup = new Barrier(3);
        var secondGroup = new Barrier(2);
        IDisposable[] links =
        [
            new Alongside("a", log, firstGroup), new Alongside("b", log, firstGroup), new Alongside("c", log, firstGroup),
            new InPlace("gate", log),
            new Alongside("d", log, secondGroup), new Alongside("e", log, secondGroup),
        ];

        LinkCloser.CloseInOrder(links);

        var events = log.Events;
        Assert.All(["a", "b", "c", "d", "e"], name => Assert.Contains($"{name} met its group", events));
        var gate = events.IndexOf("gate closes");
        Assert.All(["a", "b", "c"], name => Assert.True(events.IndexOf($"{name} ends") < gate, $"{name} ended after the gate: {string.Join(", ", events)}"));
        Assert.All(["d", "e"], name => Assert.True(events.IndexOf($"{name} begins") > gate, $"{name} began before the gate: {string.Join(", ", events)}"));
        Assert.Equal(16, events.Count);
    }

    [Fact]
    public void ALoneLinkClosesOnTheCallersThread()
    {
        var thread = -1;
        LinkCloser.CloseInOrder([new Recorder(() => thread = Environment.CurrentManagedThreadId)]);
        Assert.Equal(Environment.CurrentManagedThreadId, thread);
    }

    private sealed class Recorder(Action onDispose) : IClosesAlongside
    {
        public void Dispose() => onDispose();
    }
}
