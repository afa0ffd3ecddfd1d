namespace Pyprobe.Cli.Output;

public enum OutputFormat
{
    Text,
    Json,
    /// <summary>trace's binary capture (Output/Raw), turned into text or JSON later by pyprobe convert.</summary>
    Raw,
}
