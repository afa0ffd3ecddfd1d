using System.Net;
using System.Net.Sockets;

namespace Pyprobe.Serve.Tests.Support;

internal static class FreePort
{
    /// <summary>A loopback port the kernel just handed out (free now; a race with another program is possible but unlikely).</summary>
    public static int Take()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
