using System.Text;

namespace Pyprobe.Cli.Output.Metrics;

/// <summary>
/// Writes metric families in either exposition format. The formats differ in the metadata: OpenMetrics names a
/// counter's family without <c>_total</c> and an info metric without <c>_info</c>, has a UNIT line, and ends with
/// <c># EOF</c>; the samples are the same.
/// </summary>
internal sealed class MetricFamilyWriter(StringBuilder text, ExpositionFormat format)
{
    private readonly List<(string Name, string Value)> _labels = [];

    public bool OpenMetrics => format == ExpositionFormat.OpenMetrics;

    /// <summary>Starts a family; <paramref name="sampleName"/> is what the samples are called (…_total, …_info, …_seconds).</summary>
    public void Family(string sampleName, string type, string help, string? unit = null)
    {
        var family = sampleName;
        if (OpenMetrics && type == "counter" && family.EndsWith("_total", StringComparison.Ordinal)) family = family[..^6];
        if (OpenMetrics && type == "info" && family.EndsWith("_info", StringComparison.Ordinal)) family = family[..^5];
        var shownType = !OpenMetrics && type == "info" ? "gauge" : type;
        text.Append("# HELP ").Append(family).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(family).Append(' ').Append(shownType).Append('\n');
        if (OpenMetrics && unit is not null) text.Append("# UNIT ").Append(family).Append(' ').Append(unit).Append('\n');
    }

    public MetricFamilyWriter Label(string name, string value)
    {
        _labels.Add((name, value));
        return this;
    }

    public MetricFamilyWriter Label(string name, int value) => Label(name, value.ToString(CultureInfo.InvariantCulture));

    public void Sample(string name, ulong value) => Sample(name, value.ToString(CultureInfo.InvariantCulture));

    public void Sample(string name, double value) => Sample(name, Number(value));

    /// <summary>A histogram's buckets (cumulative, with +Inf), _count and _sum under the labels set so far.</summary>
    public void Histogram(string name, IReadOnlyList<ulong> countsPerBucket, IReadOnlyList<ulong> boundsNs, ulong count, double sumSeconds)
    {
        var labels = _labels.ToList();
        _labels.Clear();
        ulong cumulative = 0;
        for (var i = 0; i <= boundsNs.Count; i++)
        {
            cumulative += countsPerBucket[i];
            _labels.AddRange(labels);
            Label("le", i < boundsNs.Count ? Number(boundsNs[i] / 1e9) : "+Inf").Sample(name + "_bucket", cumulative);
        }
        _labels.AddRange(labels);
        Sample(name + "_count", count);
        _labels.AddRange(labels);
        Sample(name + "_sum", sumSeconds);
    }

    /// <summary>The closing line OpenMetrics requires; nothing for text.</summary>
    public void End()
    {
        if (OpenMetrics) text.Append("# EOF\n");
    }

    private void Sample(string name, string value)
    {
        text.Append(name);
        if (_labels.Count > 0)
        {
            text.Append('{');
            for (var i = 0; i < _labels.Count; i++)
            {
                if (i > 0) text.Append(',');
                text.Append(_labels[i].Name).Append("=\"");
                AppendEscaped(_labels[i].Value);
                text.Append('"');
            }
            text.Append('}');
        }
        text.Append(' ').Append(value).Append('\n');
        _labels.Clear();
    }

    private void AppendEscaped(string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '"': text.Append("\\\""); break;
                case '\n': text.Append("\\n"); break;
                default: text.Append(c); break;
            }
        }
    }

    /// <summary>Shortest round-trip form; Prometheus reads "1e-06", "+Inf", "NaN".</summary>
    private static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN"
            : value.ToString("R", CultureInfo.InvariantCulture);
}
