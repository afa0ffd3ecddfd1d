namespace Pyprobe.Analysis.Cli.Tests;

/// <summary>A -c script that calls tick() in a loop for a while and prints how many times it did.</summary>
internal static class TickLoop
{
    /// <param name="seconds">How long it loops.</param>
    /// <param name="pause">Seconds slept after each call, or null for a tight loop (a call every few microseconds traced).</param>
    public static string Script(double seconds, double? pause) =>
        "import time\n" +
        "def tick():\n    pass\n" +
        $"n = 0\nend = time.time() + {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n" +
        $"while time.time() < end:\n    tick(); n += 1{(pause is { } p ? "; time.sleep(" + p.ToString(System.Globalization.CultureInfo.InvariantCulture) + ")" : "")}\n" +
        "print(n, flush=True)\n";
}
