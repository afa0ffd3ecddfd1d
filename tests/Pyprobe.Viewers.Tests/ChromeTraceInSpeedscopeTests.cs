using Pyprobe.Viewers.Tests.Browser;
using Pyprobe.Viewers.Tests.Support;
using static Pyprobe.Viewers.Tests.Support.SpeedscopeApp;

namespace Pyprobe.Viewers.Tests;

/// <summary>
/// pyprobe's chrome trace (<c>--format chrome</c>) opened by speedscope's own app in headless Chromium: speedscope
/// imports the Trace Event Format itself (one profile per thread, named from the process_name and thread_name
/// metadata; a frame is named by the event's name and its args), and the tests read what it shows.
/// </summary>
public sealed class ChromeTraceInSpeedscopeTests
{
    [Fact]
    public async Task Every_thread_is_a_profile_and_the_calls_add_up_to_their_slices()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            // Not *.chrome.json: speedscope takes that name for a Chrome CPU profile; a trace is recognised by its content.
            string name = await app.Open(page, "timeline.trace.json", KnownTimeline.Write(), "sandwich");

            Assert.Equal("timeline.trace.json", name);
            string body = await page.Evaluate<string>("document.body.innerText");
            Assert.Contains("\npython3 app.py (pid 4242), python3 (main thread) (tid 4242) (1/2)\n", body);
            // main 100 ms, of which work 3 x 20 ms and gc 5 ms, so 35 ms self.
            Assert.Equal(
                [
                    new SandwichRow("work {\"file\":\"app.py\",\"line\":20}", "", "60.00ms (60%)", "60.00ms (60%)", 60),
                    new SandwichRow("main {\"file\":\"app.py\",\"line\":10}", "", "100.00ms (100%)", "35.00ms (35%)", 100),
                    new SandwichRow("gc {\"generation\":2,\"collected\":5}", "", "5.00ms (5.0%)", "5.00ms (5.0%)", 5),
                ],
                await SandwichRows(page));

            // 'n' is speedscope's key for the next profile: the worker, whose serve was still running at the end (150 ms).
            await page.PressKey("n", "KeyN", 78, "n");
            await page.WaitUntil("document.body.innerText.includes('(tid 4250) (2/2)')", TimeSpan.FromSeconds(10), "the worker's profile");
            Assert.Contains("\npython3 app.py (pid 4242), worker (tid 4250) (2/2)\n", await page.Evaluate<string>("document.body.innerText"));
            Assert.Equal(
                [new SandwichRow("serve {\"file\":\"app.py\",\"line\":30,\"unfinished\":true}", "", "130.00ms (100%)", "130.00ms (100%)", 100)],
                await SandwichRows(page));
            Assert.Empty(page.Errors);
        }
    }

    [Fact]
    public async Task The_time_ordered_view_shows_each_call_where_it_ran()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            await app.Open(page, "timeline.trace.json", KnownTimeline.Write(), "time-ordered");

            // The chart spans main's 100 ms across the 1280-pixel window: at 20% the first work, at 64% the gc pause.
            List<string> atWork = await HoverDown(page, 1280 * 0.20, 20, 240);
            Assert.Equal(
                ["100.00ms (100%) main {\"file\":\"app.py\",\"line\":10}", "20.00ms (20%) work {\"file\":\"app.py\",\"line\":20}"],
                atWork);
            List<string> atGc = await HoverDown(page, 1280 * 0.645, 20, 240);
            Assert.Equal(
                ["100.00ms (100%) main {\"file\":\"app.py\",\"line\":10}", "5.00ms (5.0%) gc {\"generation\":2,\"collected\":5}"],
                atGc);
            Assert.Empty(page.Errors);
        }
    }
}
