using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Pyprobe.Viewers.Tests.Browser;

/// <summary>
/// One WebSocket to a browser speaking the Chrome DevTools protocol: commands are JSON objects with an id, answered
/// by a message with the same id; everything else is an event. Pages are reached through flat sessions
/// (Target.attachToTarget with flatten), so one socket carries the browser and all its pages.
/// </summary>
internal sealed class DevToolsConnection : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonObject>> _pending = new();
    private readonly List<Subscription> _subscriptions = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _receiving;
    private int _nextId;

    private sealed record Subscription(string Method, string? SessionId, Action<JsonObject> Handler);

    private DevToolsConnection(ClientWebSocket socket)
    {
        _socket = socket;
        _receiving = Task.Run(ReceiveLoop);
    }

    public static async Task<DevToolsConnection> Connect(Uri endpoint, TimeSpan timeout)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var cancel = new CancellationTokenSource(timeout);
        await socket.ConnectAsync(endpoint, cancel.Token);
        return new DevToolsConnection(socket);
    }

    /// <summary>Sends a command and returns its result; a protocol error or a closed socket throws.</summary>
    public async Task<JsonObject> Send(string method, JsonObject? parameters = null, string? sessionId = null, TimeSpan? timeout = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        if (sessionId is not null)
            message["sessionId"] = sessionId;
        byte[] bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, _closing.Token);
        }
        finally
        {
            _sendLock.Release();
        }
        try
        {
            return await answer.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            _pending.TryRemove(id, out _);
            throw new TimeoutException($"DevTools command {method} got no answer");
        }
    }

    /// <summary>
    /// Calls <paramref name="handler"/> for every event <paramref name="method"/> of the session (null: the browser).
    /// It runs on the receiving thread: it must not wait for a command's answer.
    /// </summary>
    public IDisposable Subscribe(string method, string? sessionId, Action<JsonObject> handler)
    {
        var subscription = new Subscription(method, sessionId, handler);
        lock (_subscriptions)
            _subscriptions.Add(subscription);
        return new Unsubscriber(this, subscription);
    }

    /// <summary>The parameters of the next event <paramref name="method"/> that passes <paramref name="filter"/>; subscribe before causing it.</summary>
    public Task<JsonObject> NextEvent(string method, string? sessionId, Func<JsonObject, bool>? filter = null)
    {
        var seen = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        IDisposable? subscription = null;
        subscription = Subscribe(method, sessionId, p =>
        {
            if (filter is null || filter(p))
                seen.TrySetResult(p);
        });
        seen.Task.ContinueWith(_ => subscription.Dispose(), TaskScheduler.Default);
        return seen.Task;
    }

    private sealed class Unsubscriber(DevToolsConnection owner, Subscription subscription) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._subscriptions)
                owner._subscriptions.Remove(subscription);
        }
    }

    private async Task ReceiveLoop()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                message.SetLength(0);
                WebSocketReceiveResult part;
                do
                {
                    part = await _socket.ReceiveAsync(buffer, _closing.Token);
                    if (part.MessageType == WebSocketMessageType.Close)
                        return;
                    message.Write(buffer, 0, part.Count);
                }
                while (!part.EndOfMessage);
                Dispatch(JsonNode.Parse(message.ToArray())!.AsObject());
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            foreach (TaskCompletionSource<JsonObject> waiting in _pending.Values)
                waiting.TrySetException(new InvalidOperationException("the DevTools connection closed"));
        }
    }

    private void Dispatch(JsonObject message)
    {
        if (message["id"] is JsonNode idNode)
        {
            if (_pending.TryRemove(idNode.GetValue<int>(), out TaskCompletionSource<JsonObject>? answer))
            {
                if (message["error"] is JsonObject error)
                    answer.TrySetException(new InvalidOperationException($"DevTools error: {error.ToJsonString()}"));
                else
                    answer.TrySetResult(message["result"]?.AsObject() ?? new JsonObject());
            }
            return;
        }
        string? method = (string?)message["method"];
        string? sessionId = (string?)message["sessionId"];
        JsonObject parameters = message["params"]?.AsObject() ?? new JsonObject();
        Subscription[] matching;
        lock (_subscriptions)
            matching = [.. _subscriptions.Where(s => s.Method == method && s.SessionId == sessionId)];
        foreach (Subscription s in matching)
            s.Handler(parameters);
    }

    public async ValueTask DisposeAsync()
    {
        _closing.Cancel();
        try
        {
            await _receiving.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }
        _socket.Dispose();
        _closing.Dispose();
        _sendLock.Dispose();
    }
}
