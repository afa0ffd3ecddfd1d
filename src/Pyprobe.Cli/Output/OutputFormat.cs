namespace Pyprobe.Cli.Output;

public enum OutputFormat
{
    Text,
    Json,
}
