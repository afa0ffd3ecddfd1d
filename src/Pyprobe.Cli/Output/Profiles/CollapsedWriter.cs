using System.Text;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// The collapsed ("folded") stack format of flamegraph.pl and inferno: per distinct stack one line
/// <c>FUNC (FILE:LINE);...;FUNC (FILE:LINE) COUNT</c>, root first, lines sorted (ordinal) so equal profiles give
/// equal files.
/// </summary>
/// <remarks>
/// The format has no escapes: ';' separates frames and the count follows the last space. A ';' inside a name or
/// path becomes ':', and line breaks and tabs become spaces, so every stack stays one line with the same number
/// of frames. Spaces are left alone: readers take the count from after the last space.
/// </remarks>
internal sealed class CollapsedWriter : IProfileWriter
{
    /// <summary>record --format collapsed.</summary>
    public static readonly OutputFormat Format = new()
    {
        Name = "collapsed",
        Noun = "collapsed stacks",
        Profile = () => new CollapsedWriter(),
    };

    public string Extension => "folded";

    public void Write(StackProfile profile, Stream output)
    {
        string[] labels = [.. profile.Frames.Select(f => Escape(f.Label))];
        var lines = new List<string>(profile.Stacks.Count);
        var line = new StringBuilder();
        foreach (StackCount stack in profile.Stacks)
        {
            if (stack.Count == 0 || stack.FrameIds.Count == 0)
                continue;
            line.Clear();
            for (int i = 0; i < stack.FrameIds.Count; i++)
            {
                if (i > 0)
                    line.Append(';');
                line.Append(labels[stack.FrameIds[i]]);
            }
            line.Append(' ').Append(stack.Count.ToString(CultureInfo.InvariantCulture));
            lines.Add(line.ToString());
        }
        lines.Sort(StringComparer.Ordinal);
        using var writer = new StreamWriter(output, new UTF8Encoding(false), 64 * 1024, leaveOpen: true) { NewLine = "\n" };
        foreach (string l in lines)
            writer.WriteLine(l);
    }

    /// <summary>A label that cannot break the line structure.</summary>
    public static string Escape(string label)
    {
        if (label.AsSpan().IndexOfAny(";\n\r\t") < 0)
            return label;
        var sb = new StringBuilder(label.Length);
        foreach (char c in label)
            sb.Append(c switch { ';' => ':', '\n' or '\r' or '\t' => ' ', _ => c });
        return sb.ToString();
    }
}
