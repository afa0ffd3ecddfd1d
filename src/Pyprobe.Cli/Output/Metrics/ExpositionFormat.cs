namespace Pyprobe.Cli.Output.Metrics;

/// <summary>The two ways Prometheus reads metrics over HTTP.</summary>
internal enum ExpositionFormat
{
    /// <summary>The text exposition format 0.0.4, what every Prometheus reads.</summary>
    Text,
    /// <summary>OpenMetrics 1.0 text, sent when the scraper asks for it in Accept.</summary>
    OpenMetrics,
}

internal static class ExpositionFormats
{
    public const string TextContentType = "text/plain; version=0.0.4; charset=utf-8";
    public const string OpenMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// <summary>OpenMetrics when the Accept header names it (Prometheus sends it first, with a higher q), else text.</summary>
    public static ExpositionFormat FromAccept(string? accept) =>
        accept is not null && accept.Contains("application/openmetrics-text", StringComparison.OrdinalIgnoreCase)
            ? ExpositionFormat.OpenMetrics
            : ExpositionFormat.Text;

    public static string ContentType(ExpositionFormat format) =>
        format == ExpositionFormat.OpenMetrics ? OpenMetricsContentType : TextContentType;
}
