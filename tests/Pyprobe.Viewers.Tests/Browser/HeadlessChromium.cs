using System.Diagnostics;
using System.Text.Json.Nodes;
using Pyprobe.Viewers.Tests.Support;

namespace Pyprobe.Viewers.Tests.Browser;

/// <summary>
/// Debian's chromium, headless, with a fresh profile folder, driven over the DevTools protocol. It picks its own
/// debugging port (port 0) and writes it to DevToolsActivePort in the profile folder; disposing closes the browser
/// and, if it lingers, kills the process tree it started.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    /// <summary>The Debian launcher (it adds the flags from /etc/chromium.d, e.g. no /dev/shm when it is small).</summary>
    public const string Executable = "/usr/bin/chromium";

    private readonly Process _process;
    private readonly string _profileDir;
    private readonly BoundedLog _log;
    private readonly DevToolsConnection _connection;

    private HeadlessChromium(Process process, string profileDir, BoundedLog log, DevToolsConnection connection)
    {
        _process = process;
        _profileDir = profileDir;
        _log = log;
        _connection = connection;
    }

    /// <summary>Chromium's path, or null when it is not installed (a failure under CI=true).</summary>
    public static string? Find() => RequiredTool.Find("chromium", "chromium", Executable);

    public static async Task<HeadlessChromium> Launch(string executable)
    {
        string profileDir = Directory.CreateTempSubdirectory("pyprobe-chromium-").FullName;
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string arg in new[]
        {
            "--headless=new",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            $"--user-data-dir={profileDir}",
            "--no-sandbox",                 // the tests run as root
            "--no-first-run",
            "--disable-gpu-sandbox",
            "--use-angle=swiftshader",      // WebGL on the CPU: speedscope draws its flame chart with WebGL
            "--enable-unsafe-swiftshader",
            "--window-size=1280,900",
            "about:blank",
        })
            start.ArgumentList.Add(arg);
        Process process = Process.Start(start)!;
        var log = new BoundedLog(200);
        process.OutputDataReceived += (_, e) => log.Add(e.Data);
        process.ErrorDataReceived += (_, e) => log.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            string portFile = Path.Combine(profileDir, "DevToolsActivePort");
            var waited = Stopwatch.StartNew();
            string[] lines = [];
            while (lines.Length < 2)
            {
                if (process.HasExited)
                    throw new InvalidOperationException($"chromium exited with {process.ExitCode} before opening its debugging port:\n{log}");
                if (waited.Elapsed > TimeSpan.FromSeconds(60))
                    throw new TimeoutException($"chromium wrote no DevToolsActivePort in 60 s:\n{log}");
                await Task.Delay(50);
                if (File.Exists(portFile))
                    lines = File.ReadAllText(portFile).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            }
            var endpoint = new Uri($"ws://127.0.0.1:{lines[0]}{lines[1]}");
            DevToolsConnection connection = await DevToolsConnection.Connect(endpoint, TimeSpan.FromSeconds(30));
            return new HeadlessChromium(process, profileDir, log, connection);
        }
        catch
        {
            Stop(process);
            DeleteProfile(profileDir);
            throw;
        }
    }

    /// <summary>What chromium printed lately, for failure messages.</summary>
    public string Log => _log.ToString();

    /// <summary>A new tab, attached through a flat session, with the given viewport.</summary>
    public async Task<BrowserPage> NewPage(int width = 1280, int height = 900)
    {
        JsonObject target = await _connection.Send("Target.createTarget", new JsonObject { ["url"] = "about:blank" });
        JsonObject attached = await _connection.Send("Target.attachToTarget",
            new JsonObject { ["targetId"] = (string?)target["targetId"], ["flatten"] = true });
        var page = new BrowserPage(_connection, (string)attached["sessionId"]!);
        await page.Start(width, height);
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _connection.Send("Browser.close", timeout: TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // Closing races with the socket going away; the process is checked below either way.
        }
        await _connection.DisposeAsync();
        if (!_process.WaitForExit(5000))
            Stop(_process);
        _process.Dispose();
        DeleteProfile(_profileDir);
    }

    private static void DeleteProfile(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // A helper process (crashpad) can still be writing as the browser goes; the folder is a temp folder.
        }
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
            process.Kill(entireProcessTree: true);
        process.WaitForExit(5000);
    }
}
