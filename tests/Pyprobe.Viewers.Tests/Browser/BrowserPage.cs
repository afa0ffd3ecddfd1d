using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Pyprobe.Viewers.Tests.Browser;

/// <summary>
/// One tab: navigate, evaluate JavaScript, and act like a user through real input events (Input.dispatchMouseEvent,
/// Input.dispatchKeyEvent), which go through hit testing and the page's own listeners. Uncaught exceptions and
/// console errors are collected so a test can assert the page ran cleanly.
/// </summary>
internal sealed class BrowserPage
{
    private readonly DevToolsConnection _connection;
    private readonly string _session;
    private readonly List<string> _errors = [];

    public BrowserPage(DevToolsConnection connection, string session)
    {
        _connection = connection;
        _session = session;
    }

    /// <summary>Uncaught exceptions and console.error messages seen so far.</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_errors)
                return [.. _errors];
        }
    }

    internal async Task Start(int width, int height)
    {
        _connection.Subscribe("Runtime.exceptionThrown", _session, p =>
        {
            lock (_errors)
                _errors.Add("exception: " + (p["exceptionDetails"]?["exception"]?["description"] ?? p["exceptionDetails"]?["text"])?.ToString());
        });
        _connection.Subscribe("Runtime.consoleAPICalled", _session, p =>
        {
            if ((string?)p["type"] == "error")
                lock (_errors)
                    _errors.Add("console.error: " + string.Join(" ", p["args"]!.AsArray().Select(a => (a?["value"] ?? a?["description"])?.ToString())));
        });
        await Send("Page.enable");
        await Send("Runtime.enable");
        await Send("Emulation.setDeviceMetricsOverride", new JsonObject
        {
            ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false,
        });
    }

    public Task<JsonObject> Send(string method, JsonObject? parameters = null) => _connection.Send(method, parameters, _session);

    /// <summary>Loads <paramref name="url"/> and waits for its load event.</summary>
    public async Task Navigate(string url)
    {
        Task<JsonObject> loaded = _connection.NextEvent("Page.loadEventFired", _session);
        JsonObject result = await Send("Page.navigate", new JsonObject { ["url"] = url });
        if (result["errorText"] is JsonNode error)
            throw new InvalidOperationException($"navigating to {url}: {error}");
        await loaded.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Evaluates <paramref name="expression"/> (promises awaited) and returns its value as JSON.</summary>
    public async Task<JsonNode?> Evaluate(string expression)
    {
        JsonObject result = await Send("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true,
        });
        if (result["exceptionDetails"] is JsonObject details)
            throw new InvalidOperationException($"JavaScript threw: {details["exception"]?["description"] ?? details["text"]}\n{expression}");
        return result["result"]?["value"];
    }

    public async Task<T> Evaluate<T>(string expression) => (await Evaluate(expression))!.GetValue<T>();

    /// <summary>Polls <paramref name="condition"/> (a JavaScript expression) until it is true; the last value and the page's errors on timeout.</summary>
    public async Task WaitUntil(string condition, TimeSpan timeout, string? describe = null)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            JsonNode? value = await Evaluate($"!!({condition})");
            if (value is not null && value.GetValue<bool>())
                return;
            if (waited.Elapsed > timeout)
                throw new TimeoutException($"waited {timeout.TotalSeconds} s for {describe ?? condition}; page errors: {string.Join("; ", Errors)}");
            await Task.Delay(100);
        }
    }

    public Task MoveMouse(double x, double y) => Mouse("mouseMoved", x, y);

    /// <summary>The viewport as a PNG file's bytes, as the browser painted it.</summary>
    public async Task<byte[]> Screenshot()
    {
        JsonObject shot = await Send("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        return Convert.FromBase64String((string)shot["data"]!);
    }

    /// <summary>A left click at (x, y) in CSS pixels of the viewport: move, press, release, as a user's mouse would.</summary>
    public async Task Click(double x, double y)
    {
        await Mouse("mouseMoved", x, y);
        await Mouse("mousePressed", x, y, "left", 1);
        await Mouse("mouseReleased", x, y, "left", 1);
    }

    private Task<JsonObject> Mouse(string type, double x, double y, string button = "none", int clickCount = 0) =>
        Send("Input.dispatchMouseEvent", new JsonObject
        {
            ["type"] = type, ["x"] = x, ["y"] = y, ["button"] = button, ["clickCount"] = clickCount,
            ["buttons"] = type == "mousePressed" ? 1 : 0,
        });

    /// <summary>Presses and releases one key (e.g. "Escape", "/") with its DOM key, code and Windows key code.</summary>
    public async Task PressKey(string key, string code, int keyCode, string? text = null)
    {
        var down = new JsonObject
        {
            ["type"] = text is null ? "rawKeyDown" : "keyDown", ["key"] = key, ["code"] = code, ["windowsVirtualKeyCode"] = keyCode,
        };
        if (text is not null)
            down["text"] = text;
        await Send("Input.dispatchKeyEvent", down);
        await Send("Input.dispatchKeyEvent", new JsonObject
        {
            ["type"] = "keyUp", ["key"] = key, ["code"] = code, ["windowsVirtualKeyCode"] = keyCode,
        });
    }

    /// <summary>
    /// Answers the next JavaScript dialog (alert, confirm, prompt) that <paramref name="action"/> opens, typing
    /// <paramref name="promptText"/> into a prompt; returns the dialog's message. The action's input event only
    /// completes once the dialog is closed, so the answer is sent from here while it waits.
    /// </summary>
    public async Task<string> AnswerDialog(Func<Task> action, string promptText)
    {
        Task<JsonObject> opened = _connection.NextEvent("Page.javascriptDialogOpening", _session);
        Task acting = action();
        JsonObject dialog = await opened.WaitAsync(TimeSpan.FromSeconds(10));
        await Send("Page.handleJavaScriptDialog", new JsonObject { ["accept"] = true, ["promptText"] = promptText });
        await acting.WaitAsync(TimeSpan.FromSeconds(10));
        return (string?)dialog["message"] ?? "";
    }
}
