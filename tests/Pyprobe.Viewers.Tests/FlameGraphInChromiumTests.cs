using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Viewers.Tests.Browser;
using Pyprobe.Viewers.Tests.Support;
using Frame = Pyprobe.Viewers.Tests.Support.FlameGraphPage.Frame;

namespace Pyprobe.Viewers.Tests;

/// <summary>
/// The flame graph SVG as Chromium renders and runs it, driven with real mouse and key events. The known profile
/// has 106 samples over 1180 px (1200 minus 10 px each side), so a sample is 11.132 px wide:
/// all 106 ─ &lt;module&gt; 105 ─ Helper.run 5
///                       └ main 100 ─ &lt;unknown&gt; 2, Helper.run 25, work:12 50, work:13 20 (self 3)
///        └ &lt;truncated&gt; 1 ─ work:12 1
/// </summary>
public sealed class FlameGraphInChromiumTests
{
    private const string Highlight = "rgb(230, 0, 230)";

    private static async Task WithFlameGraph(Func<FlameGraphPage, Task> test, string query = "", Pyprobe.Python.Profiling.StackProfile? profile = null)
    {
        if (HeadlessChromium.Find() is not { } chromium)
            return;
        string dir = Directory.CreateTempSubdirectory("pyprobe-flamegraph-").FullName;
        try
        {
            string file = Path.Combine(dir, "profile.svg");
            File.WriteAllBytes(file, KnownProfiles.Write(new FlameGraphWriter(), profile ?? KnownProfiles.Simple()));
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            await page.Navigate(new Uri(file).AbsoluteUri + query);
            await test(new FlameGraphPage(page));
            Assert.Empty(page.Errors);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Frame Find(List<Frame> frames, string label, int samples) =>
        frames.Single(f => f.Label == label && f.Title.Contains($" \u2014 {samples} sample", StringComparison.Ordinal));

    private static void AssertBar(Frame frame, double x, double width)
    {
        Assert.True(frame.Shown, $"{frame.Title} is hidden");
        Assert.Equal(x, frame.X, 0.01);
        Assert.Equal(width, frame.Width, 0.01);
    }

    [Fact]
    public Task Every_frame_is_drawn_with_its_name_and_a_width_proportional_to_its_samples() => WithFlameGraph(async graph =>
    {
        List<Frame> frames = await graph.Frames();
        Assert.Equal(
            [
                ("all", 10, 1180, "all"),
                ("<module> (app.py:30)", 10, 1168.87, "<module> (app.py:30)"),
                ("Helper.run (lib.py:7)", 10, 55.66, "Helpe.."),
                ("main (app.py:25)", 65.66, 1113.21, "main (app.py:25)"),
                ("<unknown (code object freed)>", 65.66, 22.26, ""),
                ("Helper.run (lib.py:7)", 87.92, 278.3, "Helper.run (lib.py:7)"),
                ("work (app.py:12)", 366.23, 556.6, "work (app.py:12)"),
                ("work (app.py:13)", 922.83, 222.64, "work (app.py:13)"),
                ("<truncated>", 1178.87, 11.13, ""),
                ("work (app.py:12)", 1178.87, 11.13, ""),
            ],
            frames.Select(f => (f.Label, Math.Round(f.X, 2), Math.Round(f.Width, 2), f.Text)));
        // Callees sit on top of their callers, one 16 px row per level; "all" at the bottom.
        Frame all = frames[0];
        Assert.Equal(all.Y - 16, frames[1].Y, 0.01);
        Assert.Equal(all.Y - 32, Find(frames, "main (app.py:25)", 100).Y, 0.01);
        Assert.Equal(all.Y - 48, Find(frames, "work (app.py:13)", 20).Y, 0.01);

        // Hovering a frame shows its title at the bottom.
        await graph.Page.MoveMouse(frames[6].CenterX, frames[6].CenterY);
        Assert.Equal("work (app.py:12) \u2014 50 samples, 47.17%", await graph.TextOf("details"));
    });

    /// <summary>
    /// record --native's C frames: drawn on top of the Python line that called them in cool hues, one per file (both of
    /// libz's frames alike), where Python frames are warm; hovering one names its file. 60 samples: 19.667 px each.
    /// </summary>
    [Fact]
    public Task Native_frames_sit_on_their_Python_caller_in_cool_hues_by_file() => WithFlameGraph(async graph =>
    {
        List<Frame> frames = await graph.Frames();
        Frame compress = Find(frames, "compress (app.py:40)", 50), extension = Find(frames, "zlib_compress (zlib.cpython-312-x86_64-linux-gnu.so)", 40);
        Frame deflate = Find(frames, "deflate (libz.so.1)", 40), match = Find(frames, "libz.so.1+0x5d80 (libz.so.1)", 25);
        AssertBar(compress, 10, 983.33);
        AssertBar(extension, 10, 786.67);
        AssertBar(deflate, 10, 786.67);
        AssertBar(match, 10, 491.67);
        Assert.Equal([compress.Y - 16, compress.Y - 32, compress.Y - 48], new[] { extension.Y, deflate.Y, match.Y });

        static (int R, int G, int B) Rgb(Frame f)
        {
            var parts = f.Fill["rgb(".Length..^1].Split(',').Select(p => int.Parse(p.Trim())).ToArray();
            return (parts[0], parts[1], parts[2]);
        }
        Assert.All(new[] { extension, deflate, match }, f => Assert.True(Rgb(f).B > Rgb(f).R, $"{f.Label} is drawn in {f.Fill}"));
        Assert.All(new[] { compress, Find(frames, "main (app.py:25)", 10) }, f => Assert.True(Rgb(f).R > Rgb(f).B, $"{f.Label} is drawn in {f.Fill}"));
        Assert.Equal(deflate.Fill, match.Fill);
        Assert.NotEqual(deflate.Fill, extension.Fill);

        await graph.Page.MoveMouse(deflate.CenterX, deflate.CenterY);
        Assert.Equal("deflate (libz.so.1) \u2014 40 samples, 66.67%", await graph.TextOf("details"));
    }, profile: KnownProfiles.Native());

    [Fact]
    public Task Clicking_a_frame_zooms_into_it_and_reset_zoom_restores_the_graph() => WithFlameGraph(async graph =>
    {
        Assert.False(await graph.IsShown("reset"));
        await graph.Click(Find(await graph.Frames(), "main (app.py:25)", 100));

        // main fills the width; its 100 samples are now 11.8 px each; its callers stay as faded full bars.
        List<Frame> zoomed = await graph.Frames();
        AssertBar(Find(zoomed, "main (app.py:25)", 100), 10, 1180);
        AssertBar(Find(zoomed, "<unknown (code object freed)>", 2), 10, 23.6);
        AssertBar(Find(zoomed, "Helper.run (lib.py:7)", 25), 33.6, 295);
        AssertBar(Find(zoomed, "work (app.py:12)", 50), 328.6, 590);
        AssertBar(Find(zoomed, "work (app.py:13)", 20), 918.6, 236);
        // Labels are cut again for the new widths: Helper.run now fits whole, <unknown> (23.6 px) still holds nothing.
        Assert.Equal("Helper.run (lib.py:7)", Find(zoomed, "Helper.run (lib.py:7)", 25).Text);
        Assert.Equal("", Find(zoomed, "<unknown (code object freed)>", 2).Text);
        foreach (Frame parent in new[] { Find(zoomed, "all", 106), Find(zoomed, "<module> (app.py:30)", 105) })
        {
            AssertBar(parent, 10, 1180);
            Assert.Equal("f parent", parent.Class);
        }
        // main's sibling and the other root's subtree are hidden.
        Assert.False(Find(zoomed, "Helper.run (lib.py:7)", 5).Shown);
        Assert.False(Find(zoomed, "<truncated>", 1).Shown);
        Assert.False(Find(zoomed, "work (app.py:12)", 1).Shown);
        Assert.True(await graph.IsShown("reset"));

        // A second click goes deeper: work:13 starts 80 samples into main.
        await graph.Click(Find(zoomed, "work (app.py:13)", 20));
        List<Frame> deeper = await graph.Frames();
        AssertBar(Find(deeper, "work (app.py:13)", 20), 10, 1180);
        Assert.Equal("f parent", Find(deeper, "main (app.py:25)", 100).Class);
        Assert.False(Find(deeper, "work (app.py:12)", 50).Shown);

        await graph.ClickOn("reset");
        List<Frame> restored = await graph.Frames();
        AssertBar(Find(restored, "main (app.py:25)", 100), 65.66, 1113.21);
        AssertBar(Find(restored, "Helper.run (lib.py:7)", 5), 10, 55.66);
        AssertBar(Find(restored, "work (app.py:12)", 1), 1178.87, 11.13);
        Assert.Equal("Helpe..", Find(restored, "Helper.run (lib.py:7)", 5).Text);
        Assert.All(restored, f => Assert.Equal("f", f.Class));
        Assert.False(await graph.IsShown("reset"));
    });

    [Fact]
    public Task Search_highlights_the_matching_frames_and_shows_their_share_once() => WithFlameGraph(async graph =>
    {
        // The Search button asks for a regular expression in a prompt; the answer is typed into it.
        string asked = await graph.Page.AnswerDialog(() => graph.ClickOn("search"), "work");
        Assert.Equal("Search frames (regular expression)", asked);

        // work:12 (50 + 1) and work:13 (20): 71 of 106 samples.
        Assert.Equal("Matched: 66.98%", await graph.TextOf("matched"));
        Assert.Equal("Reset Search", await graph.TextOf("search"));
        List<Frame> frames = await graph.Frames();
        Assert.Equal(["work (app.py:12)", "work (app.py:13)", "work (app.py:12)"], frames.Where(f => f.Fill == Highlight).Select(f => f.Label));

        // Clicking "Reset Search" puts the colours back.
        await graph.ClickOn("search");
        Assert.Equal("", await graph.TextOf("matched"));
        Assert.Equal("Search", await graph.TextOf("search"));
        Assert.DoesNotContain(await graph.Frames(), f => f.Fill == Highlight);

        // '/' opens the same prompt; nested matches count once: main (100) holds work:12 and work:13, plus work:12 under <truncated>.
        await graph.Page.AnswerDialog(() => graph.Page.PressKey("/", "Slash", 191, "/"), "main|work");
        Assert.Equal("Matched: 95.28%", await graph.TextOf("matched"));
        Assert.Equal(4, (await graph.Frames()).Count(f => f.Fill == Highlight));

        // Escape resets search and zoom.
        await graph.Click(Find(await graph.Frames(), "main (app.py:25)", 100));
        await graph.Page.PressKey("Escape", "Escape", 27);
        Assert.Equal("", await graph.TextOf("matched"));
        AssertBar(Find(await graph.Frames(), "main (app.py:25)", 100), 65.66, 1113.21);
    });

    [Fact]
    public Task A_search_term_in_the_URL_is_applied_on_load() => WithFlameGraph(async graph =>
    {
        // Helper.run: 25 under main and 5 under <module>.
        Assert.Equal("Matched: 28.30%", await graph.TextOf("matched"));
        Assert.Equal(2, (await graph.Frames()).Count(f => f.Fill == Highlight));
    }, query: "?s=Helper");
}
