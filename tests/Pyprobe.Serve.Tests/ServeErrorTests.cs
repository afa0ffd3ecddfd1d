using System.Net;
using System.Net.Sockets;
using Pyprobe.Cli.Tests;
using Pyprobe.Serve.Tests.Support;

namespace Pyprobe.Serve.Tests;

/// <summary>Bad input: one "pyprobe: " line on stderr and a non-zero exit, before anything is attached.</summary>
public sealed class ServeErrorTests
{
    [Theory]
    [InlineData("garbage")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:99999")]
    [InlineData("300.1.1.1:80")]
    [InlineData("[nonsense]:80")]
    public void GarbageListenAddressIsAUsageError(string listen)
    {
        var result = PyprobeBinary.Run(["serve", "--listen", listen], timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"pyprobe: invalid --listen '{listen}': expected ADDRESS:PORT", line, StringComparison.Ordinal);
    }

    [Fact]
    public void PortInUseIsOneLine()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var result = PyprobeBinary.Run(["serve", "--listen", $"127.0.0.1:{port}"], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"pyprobe: cannot listen on 127.0.0.1:{port}: the address is already in use", result.Stderr.TrimEnd('\n'));
    }

    [Fact]
    public void PidAndAllTogetherIsAUsageError()
    {
        var result = PyprobeBinary.Run(["serve", "-p", "1", "--all"], timeout: TimeSpan.FromSeconds(20));
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("pyprobe: give -p PID or --all [PATH], not both", Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }
}
