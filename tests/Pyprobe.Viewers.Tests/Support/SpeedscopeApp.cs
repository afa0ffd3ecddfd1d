using System.Text.Json.Nodes;
using Pyprobe.Viewers.Tests.Browser;

namespace Pyprobe.Viewers.Tests.Support;

/// <summary>
/// speedscope's own web app, the prebuilt dist/release of the npm package that scripts/install-prerequisites.sh
/// unpacks into ${PYPROBE_CACHE:-~/.cache/pyprobe}/speedscope, served from 127.0.0.1 together with the file to
/// open, which the app fetches itself (<c>#profileURL=</c>) and imports with its own importers: speedscope's JSON,
/// the Chrome trace format and the others it recognises.
/// </summary>
internal sealed class SpeedscopeApp : IDisposable
{
    private readonly LoopbackSite _site;

    private SpeedscopeApp(string release) => _site = new LoopbackSite(release);

    public static string ReleaseFolder => Path.Combine(
        Environment.GetEnvironmentVariable("PYPROBE_CACHE") is { Length: > 0 } cache
            ? cache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "pyprobe"),
        "speedscope", "dist", "release");

    /// <summary>The app, or null when the package is not unpacked (a failure under CI=true).</summary>
    public static SpeedscopeApp? Find()
    {
        if (File.Exists(Path.Combine(ReleaseFolder, "index.html")))
            return new SpeedscopeApp(ReleaseFolder);
        RequiredTool.Missing($"speedscope ({ReleaseFolder})", "the npm package speedscope");
        return null;
    }

    public IReadOnlyList<string> Requests => _site.Requests;

    /// <summary>
    /// Opens <paramref name="content"/> (named <paramref name="fileName"/>) in speedscope's <paramref name="view"/>
    /// ("time-ordered", "left-heavy" or "sandwich") and waits until the profile is shown: the tab title becomes
    /// "NAME - speedscope". An import error ("Something went wrong") fails at once.
    /// </summary>
    public async Task<string> Open(BrowserPage page, string fileName, byte[] content, string view)
    {
        string profileUrl = _site.Add(fileName, content);
        await page.Navigate($"{_site.BaseUrl}index.html#profileURL={Uri.EscapeDataString(profileUrl)}&view={view}");
        await page.WaitUntil(
            "document.title.endsWith(' - speedscope') || document.body.innerText.includes('Something went wrong')",
            TimeSpan.FromSeconds(30), "speedscope to show the profile");
        string body = await page.Evaluate<string>("document.body.innerText");
        Assert.False(body.Contains("Something went wrong", StringComparison.Ordinal),
            $"speedscope could not import {fileName}; page errors: {string.Join("; ", page.Errors)}");
        string title = await page.Evaluate<string>("document.title");
        return title[..^" - speedscope".Length];
    }

    /// <summary>One row of the sandwich view's function table, as shown.</summary>
    public sealed record SandwichRow(string Name, string File, string Total, string Self, double TotalBarPercent);

    /// <summary>
    /// The sandwich table's rows in the order shown (self time, descending), read from the DOM: the rows with a time
    /// bar (the profile switcher's hidden list is a table too).
    /// </summary>
    public static async Task<List<SandwichRow>> SandwichRows(BrowserPage page)
    {
        await page.WaitUntil("document.querySelector('tr td div > div')", TimeSpan.FromSeconds(10), "the sandwich table");
        JsonNode rows = (await page.Evaluate("""
            Array.from(document.querySelectorAll('tr')).filter(tr => tr.querySelectorAll('td').length === 3 && tr.querySelector('td div > div')).map(tr => {
              const td = tr.querySelectorAll('td');
              const bar = td[0].querySelector('div > div');
              return { name: td[2].innerText.trim(), file: td[2].getAttribute('title') || '',
                       total: td[0].innerText.trim(), self: td[1].innerText.trim(),
                       bar: bar ? parseFloat(bar.style.width) : -1 };
            })
            """))!;
        return [.. rows.AsArray().Select(r => new SandwichRow(
            (string)r!["name"]!, (string)r["file"]!, (string)r["total"]!, (string)r["self"]!, (double)r["bar"]!))];
    }

    /// <summary>
    /// Moves the mouse down the flame chart at <paramref name="x"/>, 5 pixels at a time (a frame is taller), and returns each
    /// distinct hover tooltip it shows ("TIME (SHARE) NAME" and the location under it), top to bottom. The tooltip
    /// comes from speedscope's own hit test on its laid-out frames, drawn with WebGL.
    /// </summary>
    public static async Task<List<string>> HoverDown(BrowserPage page, double x, double fromY, double toY)
    {
        var seen = new List<string>();
        string toolbar = await page.Evaluate<string>("document.body.innerText");
        for (double y = fromY; y <= toY; y += 5)
        {
            await page.MoveMouse(x, y);
            string text = await page.Evaluate<string>("document.body.innerText");
            string tip = text.Length > toolbar.Length && text.StartsWith(toolbar, StringComparison.Ordinal)
                ? text[toolbar.Length..].Trim()
                : text.Replace(toolbar, "", StringComparison.Ordinal).Trim();
            tip = tip.Replace('\n', ' ');
            if (tip.Length > 0 && (seen.Count == 0 || seen[^1] != tip))
                seen.Add(tip);
        }
        return seen;
    }

    public void Dispose() => _site.Dispose();
}
