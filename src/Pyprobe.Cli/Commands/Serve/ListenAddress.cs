using System.Net;

namespace Pyprobe.Cli.Commands.Serve;

/// <summary>--listen ADDRESS:PORT: an IPv4 address, [IPv6], localhost, or nothing before the colon for every interface.</summary>
internal static class ListenAddress
{
    /// <summary>Loopback: the metrics name every process's command line, so exposing them is a choice (--listen :9464).</summary>
    public const string Default = "127.0.0.1:9464";

    public static IPEndPoint Parse(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon < 0) throw Invalid(text);
        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535) throw Invalid(text);
        IPAddress? address;
        if (host.Length == 0) address = IPAddress.Any;
        else if (host == "localhost") address = IPAddress.Loopback;
        else if (host.StartsWith('[') && host.EndsWith(']')) address = IPAddress.TryParse(host[1..^1], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? v6 : null;
        else address = IPAddress.TryParse(host, out var v4) && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && host.Count(c => c == '.') == 3 ? v4 : null;
        if (address is null) throw Invalid(text);
        return new IPEndPoint(address, port);
    }

    public static string Show(IPEndPoint endpoint) =>
        endpoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]:{endpoint.Port}" : $"{endpoint.Address}:{endpoint.Port}";

    private static UsageException Invalid(string text) =>
        new($"invalid --listen '{text}': expected ADDRESS:PORT, e.g. 127.0.0.1:9464, [::1]:9464 or :9464 (every interface)");
}
