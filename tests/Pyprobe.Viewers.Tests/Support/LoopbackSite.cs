using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Pyprobe.Viewers.Tests.Support;

/// <summary>
/// A static web server on 127.0.0.1 only (an HttpListener on a free port): the files of one folder plus files
/// added in memory, so a web app and the profile it opens share one origin. Remembers what was asked for.
/// </summary>
internal sealed class LoopbackSite : IDisposable
{
    private readonly HttpListener _listener;
    private readonly string _root;
    private readonly ConcurrentDictionary<string, byte[]> _extra = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly Task _serving;

    public string BaseUrl { get; }

    public LoopbackSite(string root)
    {
        _root = Path.GetFullPath(root);
        (_listener, BaseUrl) = ListenOnFreePort();
        _serving = Task.Run(Serve);
    }

    /// <summary>Serves <paramref name="content"/> at /<paramref name="name"/>.</summary>
    public string Add(string name, byte[] content)
    {
        _extra[name] = content;
        return BaseUrl + Uri.EscapeDataString(name);
    }

    /// <summary>"GET /path 200" for each request so far.</summary>
    public IReadOnlyList<string> Requests => [.. _requests];

    private static (HttpListener, string) ListenOnFreePort()
    {
        // HttpListener cannot pick a port itself: take one the kernel just handed out, retry if someone else got it first.
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            string prefix = $"http://127.0.0.1:{port}/";
            var listener = new HttpListener();
            listener.Prefixes.Add(prefix);
            try
            {
                listener.Start();
                return (listener, prefix);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            string name = Uri.UnescapeDataString(context.Request.Url!.AbsolutePath.TrimStart('/'));
            if (name.Length == 0)
                name = "index.html";
            byte[]? body = _extra.TryGetValue(name, out byte[]? added) ? added : ReadFromRoot(name);
            context.Response.StatusCode = body is null ? 404 : 200;
            context.Response.ContentType = ContentType(name);
            _requests.Enqueue($"{context.Request.HttpMethod} /{name} {context.Response.StatusCode}");
            try
            {
                if (body is not null)
                    await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
            catch (HttpListenerException)
            {
                // The browser went away mid-response.
            }
        }
    }

    private byte[]? ReadFromRoot(string name)
    {
        string path = Path.GetFullPath(Path.Combine(_root, name));
        bool inside = path.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        return inside && File.Exists(path) ? File.ReadAllBytes(path) : null;
    }

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".json" => "application/json",
        ".svg" => "image/svg+xml",
        ".wasm" => "application/wasm",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".woff2" => "font/woff2",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _serving.Wait(TimeSpan.FromSeconds(5));
    }
}
