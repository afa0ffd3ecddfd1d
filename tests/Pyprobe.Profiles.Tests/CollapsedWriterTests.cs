using System.Text;
using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Profiles.Tests;

public sealed class CollapsedWriterTests
{
    [Fact]
    public void One_sorted_line_per_stack_root_first_with_its_count()
    {
        string text = Encoding.UTF8.GetString(KnownProfiles.Write(new CollapsedWriter(), KnownProfiles.Simple()));
        Assert.Equal(
            """
            <module> (app.py:30);Helper.run (lib.py:7) 5
            <module> (app.py:30);main (app.py:25) 3
            <module> (app.py:30);main (app.py:25);<unknown (code object freed)> 2
            <module> (app.py:30);main (app.py:25);Helper.run (lib.py:7) 25
            <module> (app.py:30);main (app.py:25);work (app.py:12) 50
            <module> (app.py:30);main (app.py:25);work (app.py:13) 20
            <truncated>;work (app.py:12) 1

            """.ReplaceLineEndings("\n"),
            text);
    }

    [Fact]
    public void Thread_roots_lead_their_stacks()
    {
        string[] lines = Encoding.UTF8.GetString(KnownProfiles.Write(new CollapsedWriter(), KnownProfiles.Threads()))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            [
                "thread 4242 (MainThread);<module> (app.py:30);main (app.py:25) 10",
                "thread 4242 (MainThread);<module> (app.py:30);main (app.py:25);work (app.py:12) 30",
                "thread 4250 (worker-1);Helper.run (lib.py:7) 7",
            ],
            lines);
    }

    [Fact]
    public void Separators_and_line_breaks_inside_names_cannot_split_a_stack()
    {
        var aggregator = new StackAggregator();
        aggregator.Add([StackFrame.Python("odd;name\nx", "/tmp/a;b/c d.py", 3), StackFrame.Python("f", "x.py", 1)], 4);
        string text = Encoding.UTF8.GetString(KnownProfiles.Write(new CollapsedWriter(), aggregator.Build(KnownProfiles.Metadata())));
        Assert.Equal("odd:name x (/tmp/a:b/c d.py:3);f (x.py:1) 4\n", text);
    }
}
