using System.Globalization;
using System.Xml.Linq;
using Pyprobe.Cli.Output.Profiles;
using Pyprobe.Profiles.Tests.Support;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Profiles.Tests;

public sealed class FlameGraphWriterTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static XDocument Render(StackProfile profile)
    {
        using var stream = new MemoryStream(KnownProfiles.Write(new FlameGraphWriter(), profile));
        return XDocument.Load(stream);
    }

    private static double Number(XElement e, string attribute) =>
        double.Parse(e.Attribute(attribute)!.Value, CultureInfo.InvariantCulture);

    private static List<XElement> Frames(XDocument svg) =>
        [.. svg.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "f")];

    [Fact]
    public void One_titled_group_per_node_of_the_merged_tree()
    {
        XDocument svg = Render(KnownProfiles.Simple());
        List<XElement> frames = Frames(svg);

        Assert.Equal(
            [
                "all \u2014 106 samples, 100.00%",
                "<module> (app.py:30) \u2014 105 samples, 99.06%",
                "Helper.run (lib.py:7) \u2014 5 samples, 4.72%",
                "main (app.py:25) \u2014 100 samples, 94.34%",
                "<unknown (code object freed)> \u2014 2 samples, 1.89%",
                "Helper.run (lib.py:7) \u2014 25 samples, 23.58%",
                "work (app.py:12) \u2014 50 samples, 47.17%",
                "work (app.py:13) \u2014 20 samples, 18.87%",
                "<truncated> \u2014 1 sample, 0.94%",
                "work (app.py:12) \u2014 1 sample, 0.94%",
            ],
            frames.Select(g => g.Element(Svg + "title")!.Value));
        Assert.All(frames, g =>
        {
            Assert.Single(g.Elements(Svg + "title"));
            Assert.Single(g.Elements(Svg + "rect"));
            Assert.Single(g.Elements(Svg + "text"));
        });
    }

    [Fact]
    public void Widths_and_positions_are_proportional_to_samples()
    {
        XDocument svg = Render(KnownProfiles.Simple());
        const double perSample = (FlameGraphWriter.ImageWidth - 2 * FlameGraphWriter.FramePad) / 106;
        double height = Number(svg.Root!, "height");

        foreach (XElement g in Frames(svg))
        {
            long start = long.Parse(g.Attribute("data-s")!.Value, CultureInfo.InvariantCulture);
            long samples = long.Parse(g.Attribute("data-n")!.Value, CultureInfo.InvariantCulture);
            int depth = int.Parse(g.Attribute("data-d")!.Value, CultureInfo.InvariantCulture);
            XElement rect = g.Element(Svg + "rect")!;
            Assert.Equal(samples * perSample, Number(rect, "width"), 0.005);
            Assert.Equal(FlameGraphWriter.FramePad + start * perSample, Number(rect, "x"), 0.005);
            // Root at the bottom, one frame height per level.
            Assert.Equal(height - 34 - (depth + 1) * FlameGraphWriter.FrameHeight, Number(rect, "y"), 0.005);
            Assert.Contains($" \u2014 {samples} sample", g.Element(Svg + "title")!.Value);
        }
    }

    [Fact]
    public void Labels_are_cut_to_the_bar_and_colors_follow_the_file_and_kind()
    {
        List<XElement> frames = Frames(Render(KnownProfiles.Simple()));
        string Text(int i) => frames[i].Element(Svg + "text")!.Value;
        string Fill(int i) => frames[i].Element(Svg + "rect")!.Attribute("fill")!.Value;

        Assert.Equal("work (app.py:12)", Text(6));      // 556 px: whole
        Assert.Equal("Helpe..", Text(2));               // 5 samples = 55.66 px: 7 characters fit
        Assert.Equal("", Text(9));                      // 1 sample = 11 px: nothing fits
        Assert.Equal(Fill(1), Fill(3));                 // <module> and main: same file, same color
        Assert.NotEqual(Fill(2), Fill(3));              // lib.py vs app.py
        Assert.Equal(FlameGraphColors.Unknown, Fill(4));
        Assert.Equal(FlameGraphColors.Truncated, Fill(8));
    }

    [Fact]
    public void The_file_is_self_contained_and_carries_its_script()
    {
        XDocument svg = Render(KnownProfiles.Simple());
        XElement script = svg.Root!.Element(Svg + "script")!;
        Assert.Contains("pyprobeZoom", script.Value);
        Assert.Contains("pyprobeSearch", script.Value);
        Assert.Contains("Matched: ", script.Value);
        Assert.NotNull(svg.Descendants(Svg + "text").SingleOrDefault(t => (string?)t.Attribute("id") == "search"));
        Assert.NotNull(svg.Descendants(Svg + "text").SingleOrDefault(t => (string?)t.Attribute("id") == "reset"));
        // Nothing loaded from elsewhere: no links, no URLs but the SVG namespace.
        Assert.DoesNotContain(svg.Descendants().Attributes(), a => a.Name.LocalName == "href");
        string text = svg.ToString();
        Assert.Equal(1, CountOf(text, "http"));
        Assert.Contains("pid 4242 \u00b7 CPython 3.12.1 \u00b7 CPU time \u00b7 100 Hz \u00b7 5.0 s \u00b7 106 samples",
            svg.Descendants(Svg + "text").Single(t => (string?)t.Attribute("id") == "subtitle").Value);
    }

    [Fact]
    public void Thread_roots_sit_under_all_and_names_XML_cannot_hold_are_replaced()
    {
        var aggregator = new StackAggregator();
        aggregator.Add([KnownProfiles.MainThread, StackFrame.Python("bad\u0001name<&>", "a.py", 1)], 3);
        List<XElement> frames = Frames(Render(aggregator.Build(KnownProfiles.Metadata())));
        Assert.Equal("thread 4242 (MainThread) \u2014 3 samples, 100.00%", frames[1].Element(Svg + "title")!.Value);
        Assert.Equal(FlameGraphColors.ThreadRoot, frames[1].Element(Svg + "rect")!.Attribute("fill")!.Value);
        Assert.Equal("bad\uFFFDname<&> (a.py:1) \u2014 3 samples, 100.00%", frames[2].Element(Svg + "title")!.Value);
    }

    [Fact]
    public void Equal_profiles_give_identical_files()
    {
        byte[] a = KnownProfiles.Write(new FlameGraphWriter(), KnownProfiles.Simple());
        byte[] b = KnownProfiles.Write(new FlameGraphWriter(), KnownProfiles.Simple());
        Assert.Equal(a, b);
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + 1, StringComparison.Ordinal))
            count++;
        return count;
    }
}
