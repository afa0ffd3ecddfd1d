using System.Text.Json;
using Pyprobe.Cli.Output;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Output.Timeline;
using Pyprobe.Python.Events;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The chrome writer on the steps a <see cref="CallStacks"/> gives for the uneven cases (no interpreter needed): a
/// return whose call began before tracing, an entry that never returned (3.15 generator creation), lost events,
/// and the exact microsecond text of nanosecond times.
/// </summary>
public class ChromeTraceStreamTests
{
    [Fact]
    public void Uneven_calls_become_marked_instants_and_lost_events_a_global_one()
    {
        var tree = new List<(ulong Ns, CallStacks.Step Step, string? Name)>
        {
            (1_000_500, new CallStacks.Step(false, 0, null, 0), "started_before"),   // return without an entry
            (2_000_000, new CallStacks.Step(true, 0, null, 0), "outer"),
            (2_000_001, new CallStacks.Step(true, 1, null, 0), "generator"),         // never returns
            (3_000_000, new CallStacks.Step(false, 0, 1_000_000, 1), null),          // outer returns past it
        };
        var events = Write(stream =>
        {
            foreach (var (ns, step, name) in tree)
                stream.Call(7, 8, ns, step, name is null ? null : "app.py", name, 3);
            ((IEventStreamWriter)stream).End(new EventStreamEnd(4_000_000, 12));
        });

        var before = events.Single(e => e.GetProperty("name").GetString() == "started_before");
        Assert.Equal("i", before.GetProperty("ph").GetString());
        Assert.Equal("1000.500", before.GetProperty("ts").GetRawText());
        Assert.True(before.GetProperty("args").GetProperty("no_entry").GetBoolean());

        var generator = events.Single(e => e.GetProperty("name").GetString() == "generator");
        Assert.Equal("i", generator.GetProperty("ph").GetString());
        Assert.Equal("2000.001", generator.GetProperty("ts").GetRawText());
        Assert.True(generator.GetProperty("args").GetProperty("no_return").GetBoolean());

        var outer = events.Single(e => e.GetProperty("name").GetString() == "outer");
        Assert.Equal("X", outer.GetProperty("ph").GetString());
        Assert.Equal("2000.000", outer.GetProperty("ts").GetRawText());
        Assert.Equal("1000.000", outer.GetProperty("dur").GetRawText());
        Assert.False(outer.GetProperty("args").TryGetProperty("unfinished", out _));

        var lost = events.Single(e => e.GetProperty("name").GetString() == "12 events lost");
        Assert.Equal("g", lost.GetProperty("s").GetString());
        Assert.Equal("4000.000", lost.GetProperty("ts").GetRawText());

        Assert.Equal(["process_name", "thread_name"], events.Where(e => e.GetProperty("ph").GetString() == "M").Select(e => e.GetProperty("name").GetString()));
        Assert.Equal(6, events.Count);
    }

    [Fact]
    public void Open_calls_close_at_the_end_or_at_the_last_event_if_later()
    {
        var events = Write(stream =>
        {
            stream.Call(7, 7, 5_000_000, new CallStacks.Step(true, 0, null, 0), "app.py", "main", 1);
            stream.Call(7, 7, 6_000_000, new CallStacks.Step(true, 1, null, 0), "app.py", "wait", 2);
            stream.Collection(new GcCollection(7_000_000, 7, 9, 0, 2_000_000, 4));
            ((IEventStreamWriter)stream).End(new EventStreamEnd(8_000_000, 0));
        });
        var slices = events.Where(e => e.GetProperty("ph").GetString() == "X").ToDictionary(e => e.GetProperty("name").GetString()!);
        // The gc on thread 9 ended at 9 ms, after the stop time: the open calls end there, marked.
        Assert.Equal("4000.000", slices["main"].GetProperty("dur").GetRawText());
        Assert.Equal("3000.000", slices["wait"].GetProperty("dur").GetRawText());
        Assert.True(slices["wait"].GetProperty("args").GetProperty("unfinished").GetBoolean());
        Assert.Equal("thread (main thread)", events.Single(e => e.GetProperty("name").GetString() == "thread_name" && e.GetProperty("tid").GetInt32() == 7)
            .GetProperty("args").GetProperty("name").GetString());
        Assert.Equal("thread", events.Single(e => e.GetProperty("name").GetString() == "thread_name" && e.GetProperty("tid").GetInt32() == 9)
            .GetProperty("args").GetProperty("name").GetString());
    }

    [Fact]
    public void A_main_thread_Python_calls_MainThread_is_not_called_the_main_thread_twice()
    {
        var events = Write(stream =>
        {
            stream.Call(7, 7, 5_000_000, new CallStacks.Step(true, 0, null, 0), "app.py", "main", 1);
            stream.Call(7, 9, 5_000_000, new CallStacks.Step(true, 0, null, 0), "app.py", "work", 3);
            ((IEventStreamWriter)stream).End(new EventStreamEnd(8_000_000, 0));
        }, (_, tid) => tid == 7 ? "MainThread" : "worker-1");
        var names = events.Where(e => e.GetProperty("name").GetString() == "thread_name")
            .ToDictionary(e => e.GetProperty("tid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
        Assert.Equal(new Dictionary<int, string?> { [7] = "MainThread", [9] = "worker-1" }, names);
    }

    private static List<JsonElement> Write(Action<ChromeTraceStream> write, Func<int, int, string?>? threadName = null)
    {
        var text = new StringWriter();
        using (var output = EventBuffer.Open(null, text))
        {
            write(new ChromeTraceStream(output, new ThreadNames(_ => "python3 app.py", threadName ?? ((_, _) => null))));
            output.Flush();
        }
        using var document = JsonDocument.Parse(text.ToString());
        return [.. document.RootElement.EnumerateArray().Select(e => e.Clone())];
    }
}
