[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Pyprobe.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        InterruptibleStart.Ensure();
        return CliApp.Run(args);
    }
}
