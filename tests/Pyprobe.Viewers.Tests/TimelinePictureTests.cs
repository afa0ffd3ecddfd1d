using System.Buffers.Binary;
using Pyprobe.Viewers.Tests.Browser;
using Pyprobe.Viewers.Tests.Support;

namespace Pyprobe.Viewers.Tests;

/// <summary>
/// The README's timeline picture: a chrome trace as speedscope's time-ordered view draws it, captured from headless
/// Chromium. scripts/timeline-picture.sh records a real trace and sets PYPROBE_TIMELINE (the trace) and
/// PYPROBE_PICTURE (where the PNG goes, e.g. docs/timeline-speedscope.png); without them the known timeline is drawn
/// into a temporary file, so the capture itself stays tested.
/// </summary>
public sealed class TimelinePictureTests
{
    [Fact]
    public async Task Speedscope_draws_the_trace_and_the_picture_is_its_viewport()
    {
        if (HeadlessChromium.Find() is not { } chromium || SpeedscopeApp.Find() is not { } app)
            return;
        string? trace = Environment.GetEnvironmentVariable("PYPROBE_TIMELINE");
        string picture = Environment.GetEnvironmentVariable("PYPROBE_PICTURE") is { Length: > 0 } p
            ? p
            : Path.Combine(Path.GetTempPath(), $"pyprobe-timeline-{Guid.NewGuid():N}.png");
        using (app)
        {
            await using HeadlessChromium browser = await HeadlessChromium.Launch(chromium);
            BrowserPage page = await browser.NewPage(1280, 640);
            byte[] content = trace is { Length: > 0 } ? File.ReadAllBytes(trace) : KnownTimeline.Write();
            await app.Open(page, "trace.json", content, "time-ordered");
            await Task.Delay(500); // the flame chart is drawn with WebGL after the profile is shown
            byte[] png = await page.Screenshot();
            File.WriteAllBytes(picture, png);

            // A PNG of the viewport: signature, then IHDR with the width and height asked for.
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
            Assert.Equal(1280, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
            Assert.Equal(640, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
            Assert.Empty(page.Errors);
            if (trace is null)
                File.Delete(picture);
        }
    }
}
