using Pyprobe.Bpf.Launch;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Pyprobe.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        LaunchPhases.Mark("runtime start (exec to Main)");
        InterruptibleStart.Ensure();
        try
        {
            return CliApp.Run(args);
        }
        finally
        {
            LaunchPhases.Write();
        }
    }
}
