using System.Text.Json.Nodes;
using Pyprobe.Viewers.Tests.Browser;

namespace Pyprobe.Viewers.Tests.Support;

/// <summary>
/// A flame graph SVG open in the browser, read from the live DOM as rendered: each frame's box is the rect's
/// getBoundingClientRect (CSS pixels of the viewport, so a hidden frame has none), its fill the computed style.
/// </summary>
internal sealed class FlameGraphPage(BrowserPage page)
{
    /// <summary>One <c>g.f</c> as the browser shows it.</summary>
    public sealed record Frame(string Title, string Text, string Class, double X, double Y, double Width, double Height, string Fill)
    {
        /// <summary>The label part of the title (before " — N samples").</summary>
        public string Label => Title[..Title.LastIndexOf(" \u2014 ", StringComparison.Ordinal)];
        public bool Shown => Width > 0;
        public double CenterX => X + Width / 2;
        public double CenterY => Y + Height / 2;
    }

    public BrowserPage Page => page;

    public async Task<List<Frame>> Frames()
    {
        JsonNode frames = (await page.Evaluate("""
            Array.from(document.getElementsByClassName('f')).map(g => {
              const r = g.getElementsByTagName('rect')[0], box = r.getBoundingClientRect();
              return { title: g.getElementsByTagName('title')[0].textContent, text: g.getElementsByTagName('text')[0].textContent,
                       cls: g.getAttribute('class'), x: box.x, y: box.y, w: box.width, h: box.height, fill: getComputedStyle(r).fill };
            })
            """))!;
        return [.. frames.AsArray().Select(f => new Frame((string)f!["title"]!, (string)f["text"]!, (string)f["cls"]!,
            (double)f["x"]!, (double)f["y"]!, (double)f["w"]!, (double)f["h"]!, (string)f["fill"]!))];
    }

    /// <summary>The text of the element with this id (details, matched, search, reset).</summary>
    public Task<string> TextOf(string id) => page.Evaluate<string>($"document.getElementById('{id}').textContent");

    /// <summary>Whether the element with this id is rendered (the Reset Zoom button hides while not zoomed).</summary>
    public Task<bool> IsShown(string id) => page.Evaluate<bool>($"document.getElementById('{id}').getBoundingClientRect().width > 0");

    /// <summary>Clicks the middle of the element with this id, like a user.</summary>
    public async Task ClickOn(string id)
    {
        JsonNode box = (await page.Evaluate($"(() => {{ const b = document.getElementById('{id}').getBoundingClientRect(); return {{ x: b.x + b.width / 2, y: b.y + b.height / 2 }}; }})()"))!;
        await page.Click((double)box["x"]!, (double)box["y"]!);
    }

    /// <summary>Clicks the middle of a frame's bar, like a user.</summary>
    public Task Click(Frame frame) => page.Click(frame.CenterX, frame.CenterY);
}
