using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Pyprobe.Cli.Output.Metrics;
using Pyprobe.Python.Metrics;

namespace Pyprobe.Cli.Commands.Serve;

/// <summary>
/// A small HTTP/1.1 server for GET /metrics, one request per connection. It only reads the collector's latest
/// snapshot, so a scrape never waits for the kernel side and the kernel side never waits for a scrape. Each
/// connection has a deadline for the whole exchange (a client that connects and sends nothing, or never reads, is
/// dropped when it passes) and at most <see cref="MaxConnections"/> are open at once; more are closed at once.
/// </summary>
internal sealed class MetricsHttpServer : IDisposable
{
    public const int MaxConnections = 64;
    private const int MaxRequestBytes = 16 * 1024;

    private readonly Socket _listener;
    private readonly Func<FleetSnapshot> _snapshot;
    private readonly TimeSpan _deadline;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _slots = new(MaxConnections);
    private readonly Task _accepting;
    private RenderedBody? _text, _openMetrics;
    private long _previousScrapeTicks;

    private sealed record RenderedBody(long Sequence, string Body);

    private MetricsHttpServer(Socket listener, Func<FleetSnapshot> snapshot, TimeSpan deadline)
    {
        _listener = listener;
        _snapshot = snapshot;
        _deadline = deadline;
        _accepting = Task.Run(AcceptLoop);
    }

    /// <summary>Where it listens (the port the kernel chose when 0 was asked for).</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Binds and starts accepting; a port in use or an address not on this machine is one-line <see cref="CliException"/>.</summary>
    public static MetricsHttpServer Start(IPEndPoint endpoint, Func<FleetSnapshot> snapshot, TimeSpan deadline)
    {
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            var why = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => "the address is already in use",
                SocketError.AddressNotAvailable => "no interface of this machine has that address",
                SocketError.AccessDenied => "permission denied",
                _ => e.Message,
            };
            throw new CliException($"cannot listen on {ListenAddress.Show(endpoint)}: {why}");
        }
        return new MetricsHttpServer(listener, snapshot, deadline);
    }

    private async Task AcceptLoop()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stopping.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            if (!_slots.Wait(0))
            {
                client.Dispose(); // every slot is held by a slow client: refuse rather than queue
                continue;
            }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(_deadline);
        try
        {
            var request = await ReadRequest(client, deadline.Token);
            if (request is null) return;
            var started = Stopwatch.GetTimestamp();
            var (status, contentType, body) = Respond(request.Value.Method, request.Value.Path, request.Value.Accept, out var isMetrics);
            var head = $"HTTP/1.1 {status}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
            await Send(client, Encoding.ASCII.GetBytes(head), deadline.Token);
            if (request.Value.Method != "HEAD") await Send(client, body, deadline.Token);
            client.Shutdown(SocketShutdown.Send);
            if (isMetrics) Interlocked.Exchange(ref _previousScrapeTicks, Stopwatch.GetElapsedTime(started).Ticks);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Past its deadline, gone, or pyprobe is stopping: the connection is dropped, nothing else is affected.
        }
        finally
        {
            client.Dispose();
            _slots.Release();
        }
    }

    private (string Status, string ContentType, byte[] Body) Respond(string method, string path, string? accept, out bool isMetrics)
    {
        isMetrics = false;
        if (method is not ("GET" or "HEAD")) return ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n"u8.ToArray());
        var query = path.IndexOf('?');
        if (query >= 0) path = path[..query];
        if (path == "/")
            return ("200 OK", "text/html; charset=utf-8", "<html><head><title>pyprobe</title></head><body><h1>pyprobe serve</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n"u8.ToArray());
        if (path != "/metrics") return ("404 Not Found", "text/plain; charset=utf-8", "not found: try /metrics\n"u8.ToArray());
        isMetrics = true;
        var format = ExpositionFormats.FromAccept(accept);
        var previous = TimeSpan.FromTicks(Interlocked.Read(ref _previousScrapeTicks)).TotalSeconds;
        var text = Body(format) + FleetExposition.Tail(format, previous);
        return ("200 OK", ExpositionFormats.ContentType(format), Encoding.UTF8.GetBytes(text));
    }

    /// <summary>The rendered body of the latest snapshot, rendered once per snapshot and format.</summary>
    private string Body(ExpositionFormat format)
    {
        var snapshot = _snapshot();
        ref var cache = ref format == ExpositionFormat.OpenMetrics ? ref _openMetrics : ref _text;
        var cached = Volatile.Read(ref cache);
        if (cached is not null && cached.Sequence == snapshot.Sequence) return cached.Body;
        var rendered = new RenderedBody(snapshot.Sequence, FleetExposition.Body(snapshot, format));
        Volatile.Write(ref cache, rendered);
        return rendered.Body;
    }

    private readonly record struct Request(string Method, string Path, string? Accept);

    private static async Task<Request?> ReadRequest(Socket client, CancellationToken token)
    {
        var buffer = new byte[MaxRequestBytes];
        var length = 0;
        while (true)
        {
            var n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, token);
            if (n == 0) return null;
            length += n;
            var end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0) return Parse(Encoding.Latin1.GetString(buffer, 0, end));
            if (length == buffer.Length) return null;
        }
    }

    private static Request? Parse(string head)
    {
        var lines = head.Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) return null;
        string? accept = null;
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line.AsSpan(0, colon).Trim().Equals("Accept", StringComparison.OrdinalIgnoreCase)) accept = line[(colon + 1)..].Trim();
        }
        return new Request(parts[0], parts[1], accept);
    }

    private static async Task Send(Socket client, byte[] bytes, CancellationToken token)
    {
        var sent = 0;
        while (sent < bytes.Length) sent += await client.SendAsync(bytes.AsMemory(sent), SocketFlags.None, token);
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _listener.Dispose();
        try { _accepting.Wait(TimeSpan.FromSeconds(2)); }
        catch (AggregateException) { }
        _stopping.Dispose();
    }
}
