using System.Text;
using System.Xml;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// A self-contained interactive flame graph (SVG with an embedded script, no external resources), laid out like
/// flamegraph.pl: root ("all") at the bottom, callers below callees, siblings in label order, width proportional
/// to samples. Every node of the merged call tree is one <c>&lt;g class="f"&gt;</c> holding a
/// <c>&lt;title&gt;</c> ("LABEL — N samples, P%"), a <c>&lt;rect&gt;</c> and a <c>&lt;text&gt;</c> cut to fit.
/// See <see cref="FlameGraphScript"/> for zoom and search.
/// </summary>
internal sealed class FlameGraphWriter : IProfileWriter
{
    /// <summary>record --format flamegraph.</summary>
    public static readonly OutputFormat Format = new()
    {
        Name = "flamegraph",
        Summary = "an interactive SVG",
        Noun = "flame graph",
        Profile = () => new FlameGraphWriter(),
    };

    public const double ImageWidth = 1200;
    public const double FramePad = 10;
    public const double FrameHeight = 16;
    public const double FontSize = 12;
    /// <summary>Average glyph width of the font as a share of its size (flamegraph.pl's figure for Verdana).</summary>
    public const double FontWidth = 0.59;
    private const double TopPad = FontSize * 3;
    private const double BottomPad = FontSize * 2 + 10;

    public string Extension => "svg";

    /// <summary>Width in pixels of the bar for <paramref name="samples"/> of <paramref name="total"/>.</summary>
    public static double WidthOf(long samples, long total) => total == 0 ? 0 : samples * (ImageWidth - 2 * FramePad) / total;

    public void Write(StackProfile profile, Stream output)
    {
        CallTreeNode tree = CallTree.Build(profile);
        List<CallTreeNode> nodes = [.. CallTree.Walk(tree)];
        int maxDepth = nodes.Max(n => n.Depth);
        double height = (maxDepth + 1) * FrameHeight + TopPad + BottomPad;
        long total = tree.Total;

        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = false, CloseOutput = false };
        using XmlWriter xml = XmlWriter.Create(output, settings);
        xml.WriteStartDocument();
        xml.WriteStartElement("svg", "http://www.w3.org/2000/svg");
        xml.WriteAttributeString("version", "1.1");
        xml.WriteAttributeString("width", Px(ImageWidth));
        xml.WriteAttributeString("height", Px(height));
        xml.WriteAttributeString("viewBox", $"0 0 {Px(ImageWidth)} {Px(height)}");
        xml.WriteAttributeString("data-width", Px(ImageWidth));
        xml.WriteAttributeString("data-pad", Px(FramePad));
        xml.WriteAttributeString("data-char-width", Px(FontSize * FontWidth));

        xml.WriteElementString("style", Style);
        WriteRect(xml, 0, 0, ImageWidth, height, "rgb(250,250,245)", null);
        WriteText(xml, "title", ImageWidth / 2, FontSize * 1.5, "middle", "pyprobe record");
        WriteText(xml, "subtitle", ImageWidth / 2, FontSize * 2.7, "middle", Subtitle(profile.Metadata, total));
        WriteText(xml, "reset", FramePad, FontSize * 1.5, null, "Reset Zoom", "button hide");
        WriteText(xml, "search", ImageWidth - FramePad, FontSize * 1.5, "end", "Search", "button");
        WriteText(xml, "details", FramePad, height - FontSize / 2 - 6, null, " ");
        WriteText(xml, "matched", ImageWidth - FramePad, height - FontSize / 2 - 6, "end", "");

        foreach (CallTreeNode node in nodes)
            WriteFrame(xml, profile, node, total, height);

        xml.WriteStartElement("script");
        xml.WriteAttributeString("type", "text/ecmascript");
        xml.WriteCData(FlameGraphScript.Source);
        xml.WriteEndElement();
        xml.WriteEndElement();
        xml.WriteEndDocument();
    }

    /// <summary>"LABEL — N samples, P%", the tooltip of a frame; "all" for the root.</summary>
    public static string Title(string label, long samples, long total) => string.Create(CultureInfo.InvariantCulture,
        $"{label} \u2014 {samples} {(samples == 1 ? "sample" : "samples")}, {(total == 0 ? 0 : 100.0 * samples / total):0.00}%");

    /// <summary>The label as drawn in a bar <paramref name="width"/> pixels wide: whole, cut with "..", or empty.</summary>
    public static string FitLabel(string label, double width)
    {
        int chars = (int)Math.Floor((width - 6) / (FontSize * FontWidth));
        if (chars < 3)
            return "";
        return label.Length <= chars ? label : string.Concat(label.AsSpan(0, chars - 2), "..");
    }

    private static void WriteFrame(XmlWriter xml, StackProfile profile, CallTreeNode node, long total, double height)
    {
        bool isRoot = node.FrameId < 0;
        string label = XmlSafe(isRoot ? "all" : profile.Frames[node.FrameId].Label);
        double x = FramePad + WidthOf(node.Start, total);
        double width = WidthOf(node.Total, total);
        double y = height - BottomPad - (node.Depth + 1) * FrameHeight;

        xml.WriteStartElement("g");
        xml.WriteAttributeString("class", "f");
        xml.WriteAttributeString("data-s", node.Start.ToString(CultureInfo.InvariantCulture));
        xml.WriteAttributeString("data-n", node.Total.ToString(CultureInfo.InvariantCulture));
        xml.WriteAttributeString("data-d", node.Depth.ToString(CultureInfo.InvariantCulture));
        xml.WriteElementString("title", Title(label, node.Total, total));
        WriteRect(xml, x, y, width, FrameHeight - 1, isRoot ? FlameGraphColors.Root : FlameGraphColors.For(profile.Frames[node.FrameId]), "2");
        xml.WriteStartElement("text");
        xml.WriteAttributeString("x", Px(x + 3));
        xml.WriteAttributeString("y", Px(y + FrameHeight - 4.5));
        xml.WriteString(FitLabel(label, width));
        xml.WriteEndElement();
        xml.WriteEndElement();
    }

    private static void WriteRect(XmlWriter xml, double x, double y, double width, double height, string fill, string? rx)
    {
        xml.WriteStartElement("rect");
        xml.WriteAttributeString("x", Px(x));
        xml.WriteAttributeString("y", Px(y));
        xml.WriteAttributeString("width", Px(width));
        xml.WriteAttributeString("height", Px(height));
        xml.WriteAttributeString("fill", fill);
        if (rx is not null)
            xml.WriteAttributeString("rx", rx);
        xml.WriteEndElement();
    }

    private static void WriteText(XmlWriter xml, string id, double x, double y, string? anchor, string text, string? cls = null)
    {
        xml.WriteStartElement("text");
        xml.WriteAttributeString("id", id);
        if (cls is not null)
            xml.WriteAttributeString("class", cls);
        xml.WriteAttributeString("x", Px(x));
        xml.WriteAttributeString("y", Px(y));
        if (anchor is not null)
            xml.WriteAttributeString("text-anchor", anchor);
        xml.WriteString(XmlSafe(text));
        xml.WriteEndElement();
    }

    private static string Subtitle(ProfileMetadata m, long samples)
    {
        string pids = m.Pids.Count == 1 ? $"pid {m.Pids[0]}" : $"pids {string.Join(",", m.Pids)}";
        string version = m.PythonVersion.Length > 0 ? $" \u00b7 CPython {m.PythonVersion}" : "";
        string mode = m.Mode == ProfileMode.Wall ? "wall clock (--idle)" : "CPU time";
        return string.Create(CultureInfo.InvariantCulture,
            $"{pids}{version} \u00b7 {mode} \u00b7 {m.SampleRateHz} Hz \u00b7 {m.Duration.TotalSeconds:0.0} s \u00b7 {samples} samples \u00b7 started {m.StartTime:yyyy-MM-dd HH:mm:ss zzz}");
    }

    /// <summary>Replaces characters XML cannot hold (control characters, lone surrogates) by U+FFFD.</summary>
    public static string XmlSafe(string text)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool pair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            bool ok = pair || (XmlConvert.IsXmlChar(c) && !char.IsSurrogate(c));
            if (!ok && sb is null)
                sb = new StringBuilder(text.Length).Append(text, 0, i);
            if (sb is not null)
            {
                sb.Append(ok ? c : '\uFFFD');
                if (pair)
                    sb.Append(text[i + 1]);
            }
            if (pair)
                i++;
        }
        return sb?.ToString() ?? text;
    }

    private static string Px(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private const string Style =
        "text{font-family:Verdana,sans-serif;font-size:12px;fill:rgb(0,0,0)}" +
        "#title{font-size:17px}#subtitle{fill:rgb(90,90,90)}" +
        ".button{cursor:pointer;fill:rgb(60,60,160)}.button:hover{text-decoration:underline}" +
        ".f{cursor:pointer}.f:hover rect{stroke:rgb(0,0,0);stroke-width:0.5}" +
        ".f text{pointer-events:none}.parent{opacity:0.5}.hide{display:none}";
}
