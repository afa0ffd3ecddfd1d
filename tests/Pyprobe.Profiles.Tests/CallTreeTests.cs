using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Profiles.Tests;

public sealed class CallTreeTests
{
    [Fact]
    public void Stacks_merge_into_a_tree_with_siblings_in_label_order()
    {
        Assert.Equal(
            [
                "0:all@0+106/0",
                "1:<module> (app.py:30)@0+105/0",
                "2:Helper.run (lib.py:7)@0+5/5",
                "2:main (app.py:25)@5+100/3",
                "3:<unknown (code object freed)>@5+2/2",
                "3:Helper.run (lib.py:7)@7+25/25",
                "3:work (app.py:12)@32+50/50",
                "3:work (app.py:13)@82+20/20",
                "1:<truncated>@105+1/0",
                "2:work (app.py:12)@105+1/1",
            ],
            Describe(KnownProfiles.Simple()));
    }

    /// <summary>Each node of the profile's call tree, depth-first: depth, frame, start, total and self samples.</summary>
    private static IEnumerable<string> Describe(StackProfile profile) =>
        CallTree.Walk(CallTree.Build(profile)).Select(n =>
            $"{n.Depth}:{(n.FrameId < 0 ? "all" : profile.Frames[n.FrameId].Label)}@{n.Start}+{n.Total}/{n.Self}");

    /// <summary>record --function: each Python frame at its def line, so work:12 and work:13 become one work:10 frame.</summary>
    [Fact]
    public void By_function_a_function_is_one_frame_at_its_first_line_and_counts_are_kept()
    {
        StackProfile source = KnownProfiles.Simple();
        StackProfile profile = source.ByFunction();
        Assert.Equal(
            [
                "0:all@0+106/0",
                "1:<module> (app.py:1)@0+105/0",
                "2:Helper.run (lib.py:5)@0+5/5",
                "2:main (app.py:20)@5+100/3",
                "3:<unknown (code object freed)>@5+2/2",
                "3:Helper.run (lib.py:5)@7+25/25",
                "3:work (app.py:10)@32+70/70",
                "1:<truncated>@105+1/0",
                "2:work (app.py:10)@105+1/1",
            ],
            Describe(profile));
        Assert.Same(source.Metadata, profile.Metadata);
    }
}
