using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Viewers.Tests.Browser;
using Pyprobe.Viewers.Tests.Support;
using static Pyprobe.Viewers.Tests.Support.SpeedscopeApp;

namespace Pyprobe.Viewers.Tests;

/// <summary>
/// Our speedscope files opened by speedscope's own app (the npm package) in headless Chromium: the app fetches and
/// imports the file itself; the tests read what it shows. Known profiles: 100 Hz, so one sample is 10 ms.
/// </summary>
public sealed class SpeedscopeInChromiumTests
{
    [Fact]
    public async Task The_sandwich_table_lists_every_function_with_its_total_and_self_time()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            string name = await app.Open(page, "simple.speedscope.json",
                KnownProfiles.Write(new SpeedscopeWriter(), KnownProfiles.Simple()), "sandwich");

            Assert.Equal("pyprobe record pid 4242 (cpu, 100 Hz)", name);
            // work:12 is 50 samples under main and 1 under <truncated>; Helper.run 25 under main and 5 under <module>.
            Assert.Equal(
                [
                    new SandwichRow("work", "app.py", "510.00ms (48%)", "510.00ms (48%)", 48.1132),
                    new SandwichRow("Helper.run", "lib.py", "300.00ms (28%)", "300.00ms (28%)", 28.3019),
                    new SandwichRow("work", "app.py", "200.00ms (19%)", "200.00ms (19%)", 18.8679),
                    new SandwichRow("main", "app.py", "1.00s (94%)", "30.00ms (2.8%)", 94.3396),
                    new SandwichRow("<unknown (code object freed)>", "", "20.00ms (1.9%)", "20.00ms (1.9%)", 1.88679),
                    new SandwichRow("<truncated>", "", "10.00ms (0.94%)", "0.00ns (<0.01%)", 0.943396),
                    new SandwichRow("<module>", "app.py", "1.05s (>99%)", "0.00ns (<0.01%)", 99.0566),
                ],
                await SandwichRows(page));
            Assert.Empty(page.Errors);
            Assert.Contains("GET /simple.speedscope.json 200", app.Requests);
        }
    }

    [Fact]
    public async Task Hovering_the_left_heavy_flame_chart_names_the_frames_under_the_mouse()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            await app.Open(page, "simple.speedscope.json", KnownProfiles.Write(new SpeedscopeWriter(), KnownProfiles.Simple()), "left-heavy");

            // A quarter of the way across: <module> (105 of 106), main (100), then main's heaviest child, work:12 (50).
            List<string> tips = await HoverDown(page, 1280 * 0.25, 20, 240);
            Assert.Equal(
                ["1.05s (>99%) <module> app.py:30", "1.00s (94%) main app.py:25", "500.00ms (47%) work app.py:12"],
                tips);
            Assert.Empty(page.Errors);
        }
    }

    [Fact]
    public async Task Threads_become_one_profile_each_named_after_the_thread()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage();
            string name = await app.Open(page, "threads.speedscope.json",
                KnownProfiles.Write(new SpeedscopeWriter(), KnownProfiles.Threads()), "sandwich");

            Assert.Equal("pyprobe record pid 4242 (cpu, 100 Hz)", name);
            Assert.Contains("\nthread 4242 (MainThread) (1/2)\n", await page.Evaluate<string>("document.body.innerText"));
            Assert.Equal(
                [
                    new SandwichRow("work", "app.py", "300.00ms (75%)", "300.00ms (75%)", 75),
                    new SandwichRow("main", "app.py", "400.00ms (100%)", "100.00ms (25%)", 100),
                    new SandwichRow("<module>", "app.py", "400.00ms (100%)", "0.00ns (<0.01%)", 100),
                ],
                await SandwichRows(page));

            // 'n' is speedscope's key for the next profile.
            await page.PressKey("n", "KeyN", 78, "n");
            await page.WaitUntil("document.body.innerText.includes('\\nthread 4250 (worker-1) (2/2)\\n')", TimeSpan.FromSeconds(10), "the worker's profile");
            Assert.Equal([new SandwichRow("Helper.run", "lib.py", "70.00ms (100%)", "70.00ms (100%)", 100)], await SandwichRows(page));
            Assert.Empty(page.Errors);
        }
    }
}
