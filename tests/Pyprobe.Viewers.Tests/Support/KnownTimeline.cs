using Pyprobe.Cli.Output;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Cli.Output.Timeline;
using Pyprobe.Python.Events;

namespace Pyprobe.Viewers.Tests.Support;

/// <summary>
/// A chrome trace with known times, written by pyprobe's own writer (<see cref="ChromeTraceStream"/>) from the
/// steps a <see cref="CallStacks"/> would give, on two threads of pid 4242 (all times in ms from 1000 s):
/// <code>
/// 4242 MainThread  main [0, 100] ── work [10, 30], work [40, 60], gc [62, 67], work [70, 90]
/// 4250 worker      serve [20, …  still open when tracing stops at 150 (unfinished)
/// </code>
/// </summary>
internal static class KnownTimeline
{
    private const ulong Origin = 1_000_000_000_000;

    public static byte[] Write()
    {
        string path = Path.Combine(Path.GetTempPath(), $"pyprobe-timeline-{Guid.NewGuid():N}.json");
        try
        {
            using (EventBuffer output = EventBuffer.Open(path, TextWriter.Null))
            {
                var names = new ThreadNames(_ => "python3 app.py", (_, tid) => tid == 4242 ? "python3" : "worker");
                var timeline = new ChromeTraceStream(output, names);
                IEventStreamWriter stream = timeline;
                Enter(timeline, 4242, 0, 0, "main", 10);
                foreach (ulong start in new ulong[] { 10, 40, 70 })
                {
                    Enter(timeline, 4242, start, 1, "work", 20);
                    if (start == 10)
                        Enter(timeline, 4250, 20, 0, "serve", 30);
                    Return(timeline, 4242, start + 20, 1, "work", 20);
                    if (start == 40)
                        stream.Collection(new GcCollection(Ms(62), 4242, 4242, 2, 5_000_000, 5));
                }
                Return(timeline, 4242, 100, 0, "main", 100);
                stream.End(new EventStreamEnd(Ms(150), 0));
                output.Flush();
            }
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static ulong Ms(ulong ms) => Origin + ms * 1_000_000;

    private static void Enter(ChromeTraceStream timeline, int tid, ulong ms, int depth, string name, long line) =>
        timeline.Call(4242, tid, Ms(ms), new CallStacks.Step(true, depth, null, 0), "app.py", name, line);

    private static void Return(ChromeTraceStream timeline, int tid, ulong ms, int depth, string name, ulong tookMs) =>
        timeline.Call(4242, tid, Ms(ms), new CallStacks.Step(false, depth, tookMs * 1_000_000, 0), null, null, 0);
}
