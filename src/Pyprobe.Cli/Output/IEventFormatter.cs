using Pyprobe.Python.Tracing;

namespace Pyprobe.Cli.Output;

/// <summary>Turns one probe event into one line of output.</summary>
internal interface IEventFormatter
{
    void Write(EventBuffer output, in ProbeEvent e);
}
