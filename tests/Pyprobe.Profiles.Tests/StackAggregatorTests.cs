using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;
using static Pyprobe.Profiles.Tests.Support.KnownProfiles;

namespace Pyprobe.Profiles.Tests;

public sealed class StackAggregatorTests
{
    [Fact]
    public void Identical_stacks_share_one_counter_and_frames_are_interned()
    {
        StackProfile profile = KnownProfiles.Simple();

        Assert.Equal(7, profile.Stacks.Count);
        Assert.Equal(7, profile.Frames.Count); // 5 Python frames, unknown, truncated
        Assert.Equal(106, profile.TotalSamples);
        StackCount work12 = profile.Stacks.Single(s => profile.FramesOf(s).SequenceEqual([Module, Main, Work12]));
        Assert.Equal(50, work12.Count);
        Assert.Equal([Module, Main, Work12], profile.FramesOf(profile.Stacks[0])); // first seen first
    }

    [Fact]
    public void Same_function_at_another_line_is_another_frame()
    {
        var aggregator = new StackAggregator();
        int a = aggregator.Intern(Work12);
        int b = aggregator.Intern(Work13);
        int c = aggregator.Intern(StackFrame.Python("work", "app.py", 12, firstLine: 10));
        Assert.NotEqual(a, b);
        Assert.Equal(a, c);
        Assert.Equal(2, aggregator.FrameCount);
    }

    [Fact]
    public void Adding_by_ids_counts_and_rejects_ids_never_interned()
    {
        var aggregator = new StackAggregator();
        int module = aggregator.Intern(Module), main = aggregator.Intern(Main);
        aggregator.Add([module, main]);
        aggregator.Add([module, main], 4);
        aggregator.Add([module]);
        Assert.Equal(2, aggregator.StackCount);
        StackProfile profile = aggregator.Build(Metadata());
        Assert.Equal(5, profile.Stacks[0].Count);
        Assert.Equal(1, profile.Stacks[1].Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => aggregator.Add([module, 7]));
        Assert.Throws<ArgumentOutOfRangeException>(() => aggregator.Add([module], -1));
    }

    [Fact]
    public void Gil_holding_samples_are_counted_per_stack_kept_by_function_and_summed_per_function()
    {
        var aggregator = new StackAggregator();
        aggregator.Add([Module, Main, Work12], 3, heldGil: 3);
        aggregator.Add([Module, Main, Work13], 5, heldGil: 1);
        aggregator.Add([Module, Main, Work12], 2);
        aggregator.Add([Module, Main], 4, heldGil: 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => aggregator.Add([Module], 1, heldGil: 2));
        StackProfile profile = aggregator.Build(Metadata());
        Assert.Equal([(5L, 3L), (5L, 1L), (4L, 4L)], profile.Stacks.Select(s => (s.Count, s.HeldGil)));

        // By function, work's two lines are one stack: 10 samples, 4 of them holding the GIL.
        var byFunction = profile.ByFunction();
        Assert.Equal([(10L, 4L), (4L, 4L)], byFunction.Stacks.Select(s => (s.Count, s.HeldGil)));

        var shares = Pyprobe.Python.Sampling.FunctionShares.Of(profile).ToDictionary(f => f.Function);
        Assert.Equal((10L, 4L), (shares["work"].Own, shares["work"].OwnHeldGil));
        Assert.Equal((4L, 4L), (shares["main"].Own, shares["main"].OwnHeldGil));
        Assert.Equal((0L, 0L), (shares["<module>"].Own, shares["<module>"].OwnHeldGil));
    }

    [Fact]
    public void A_known_stack_is_counted_without_allocating()
    {
        var aggregator = new StackAggregator();
        int[] ids = [aggregator.Intern(Module), aggregator.Intern(Main), aggregator.Intern(Work12)];
        aggregator.Add(ids);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
            aggregator.Add(ids);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(10_001, aggregator.Build(Metadata()).Stacks.Single().Count);
    }

    [Fact]
    public void Deep_stacks_longer_than_the_scratch_buffer_are_kept_whole()
    {
        var aggregator = new StackAggregator();
        StackFrame[] deep = [.. Enumerable.Range(1, 150).Select(i => StackFrame.Python("recurse", "deep.py", i))];
        aggregator.Add(deep);
        aggregator.Add(deep, 2);
        StackProfile profile = aggregator.Build(Metadata());
        Assert.Equal(deep, profile.FramesOf(profile.Stacks.Single()));
        Assert.Equal(3, profile.Stacks.Single().Count);
    }

    [Fact]
    public void Frame_labels_and_special_frames()
    {
        Assert.Equal("Helper.run (lib.py:7)", Helper.Label);
        Assert.Equal("thread 4242 (MainThread)", MainThread.Label);
        Assert.Equal("thread 7", StackFrame.ThreadRoot(7, null).Label);
        Assert.Equal(FrameKind.ThreadRoot, MainThread.Kind);
        Assert.Equal("<unknown (code object freed)>", StackFrame.Unknown.Label);
        Assert.Equal("<truncated>", StackFrame.Truncated.Label);
        Assert.Equal(10_000_000, Metadata().PeriodNanos);
        Assert.Equal(101_010, (Metadata() with { SampleRateHz = 9900 }).PeriodNanos);
    }
}
