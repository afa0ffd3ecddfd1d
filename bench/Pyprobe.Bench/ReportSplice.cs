using System.Text.RegularExpressions;

namespace Pyprobe.Bench;

/// <summary>
/// --update: puts the sections and headlines of a partial run (--only) into an existing BENCHMARKS.md instead of
/// writing a file with only them. A section (## TITLE up to the next ## heading) replaces the one with the same
/// title, or is appended; a headline paragraph replaces the one that starts with the same bold words, or goes
/// before the first section. The "behind bpftrace" bullets of the topics this run's sections speak to are replaced by
/// this run's (none, where pyprobe no longer is). The rest of the file (its header table, the other sections) is left
/// as it was.
/// </summary>
internal static partial class ReportSplice
{
    [GeneratedRegex(@"^## (.+)$", RegexOptions.Multiline)] private static partial Regex Heading();
    [GeneratedRegex(@"^\*\*[^*]+\*\*")] private static partial Regex BoldStart();

    private const string BehindTitle = "Where pyprobe is behind bpftrace";

    public static string Into(string existing, string head, string body, IReadOnlyDictionary<string, string> facts, IReadOnlyList<string>? behind = null,
        IReadOnlyList<string>? behindTopics = null)
    {
        var text = ReplaceBehind(existing.Replace("\r\n", "\n"), behind ?? [], behindTopics ?? []);
        foreach (var (title, section) in Sections(body))
        {
            var match = Heading().Matches(text).FirstOrDefault(m => m.Groups[1].Value.Trim() == title);
            if (match is null) { text = text.TrimEnd('\n') + "\n\n" + section.TrimEnd('\n') + "\n"; continue; }
            var next = Heading().Match(text, match.Index + match.Length);
            var end = next.Success ? next.Index : text.Length;
            text = text[..match.Index] + section.TrimEnd('\n') + "\n\n" + text[end..].TrimStart('\n');
        }
        foreach (var paragraph in head.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var key = BoldStart().Match(paragraph.Trim());
            if (!key.Success) continue;
            var at = text.IndexOf("\n" + key.Value, StringComparison.Ordinal);
            if (at >= 0)
            {
                var stop = text.IndexOf("\n\n", at + 1, StringComparison.Ordinal);
                text = text[..(at + 1)] + paragraph.Trim() + (stop < 0 ? "\n" : text[stop..]);
            }
            else
            {
                var first = Heading().Match(text);
                var insert = first.Success ? first.Index : text.Length;
                text = text[..insert] + paragraph.Trim() + "\n\n" + text[insert..];
            }
        }
        return AddUpdateRow(text, facts, Sections(body).Select(x => x.Title).ToList());
    }

    /// <summary>Replaces the existing "behind" section's bullets of <paramref name="topics"/> with this run's <paramref name="bullets"/>.</summary>
    private static string ReplaceBehind(string text, IReadOnlyList<string> bullets, IReadOnlyList<string> topics)
    {
        if (bullets.Count == 0 && topics.Count == 0) return text;
        var match = Heading().Matches(text).FirstOrDefault(m => m.Groups[1].Value.Trim() == BehindTitle);
        if (match is null) return text;
        var next = Heading().Match(text, match.Index + match.Length);
        var end = next.Success ? next.Index : text.Length;
        var lines = text[(match.Index + match.Length)..end].Split('\n').Where(l => l.StartsWith("- ", StringComparison.Ordinal)).ToList();
        lines.RemoveAll(l => topics.Any(t => l.StartsWith("- " + t, StringComparison.Ordinal)));
        lines.AddRange(bullets.Select(b => "- " + b));
        var section = lines.Count == 0 ? "" : "## " + BehindTitle + "\n\n" + string.Join("\n", lines) + "\n\n";
        return text[..match.Index] + section + text[end..].TrimStart('\n');
    }

    /// <summary>
    /// A row in the header table for this update (its sections, date, kernel, pyprobe build), after the last row: the
    /// table's own rows describe the last full run, which the other sections still come from.
    /// </summary>
    private static string AddUpdateRow(string text, IReadOnlyDictionary<string, string> facts, IReadOnlyList<string> titles)
    {
        string Fact(string name) => facts.TryGetValue(name, out var value) ? value : "?";
        var row = $"| Updated {Fact("date")} | {string.Join("; ", titles)}: kernel {Fact("kernel")}, pyprobe {Fact("pyprobe")}, load {Fact("load")}, {Fact("took")} |";
        var firstTable = text.IndexOf("\n|", StringComparison.Ordinal);
        if (firstTable < 0) return text;
        var end = text.IndexOf("\n\n", firstTable + 1, StringComparison.Ordinal);
        if (end < 0) return text;
        return text[..end] + "\n" + row + text[end..];
    }

    private static IEnumerable<(string Title, string Text)> Sections(string body)
    {
        var heads = Heading().Matches(body);
        for (var i = 0; i < heads.Count; i++)
        {
            var end = i + 1 < heads.Count ? heads[i + 1].Index : body.Length;
            yield return (heads[i].Groups[1].Value.Trim(), body[heads[i].Index..end]);
        }
    }
}
