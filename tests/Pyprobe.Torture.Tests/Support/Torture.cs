using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Shared knobs of the torture suite. Every generated case is a pure function of (seed, case
/// index), so a failure message that prints both reproduces it exactly:
///   PYPROBE_TORTURE_SEED=&lt;seed&gt; dotnet test --filter &lt;test&gt;
/// PYPROBE_TORTURE_LONG=1 multiplies every case count by <see cref="LongFactor"/>.
/// </summary>
public static class Torture
{
    public const ulong DefaultSeed = 0x5eed_7047_0de5_2025;
    public const int LongFactor = 20;

    /// <summary>
    /// The fuzz classes share one xUnit collection so they run one after another: run in parallel
    /// they fight over the two cores and turn scheduling stalls into per-case timeouts.
    /// </summary>
    public const string Collection = "Torture";

    public static ulong Seed =>
        Environment.GetEnvironmentVariable("PYPROBE_TORTURE_SEED") is { Length: > 0 } s
            ? (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? Convert.ToUInt64(s[2..], 16) : ulong.Parse(s))
            : DefaultSeed;

    public static bool Long => Environment.GetEnvironmentVariable("PYPROBE_TORTURE_LONG") == "1";

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static int Scale(int cases) => Long ? cases * LongFactor : cases;

    /// <summary>A C#-ish literal of arbitrary text, so control characters and unicode survive in messages.</summary>
    public static string Escape(string s)
    {
        var b = new StringBuilder("\"");
        foreach (char c in s)
        {
            if (c == '"' || c == '\\') b.Append('\\').Append(c);
            else if (c is >= ' ' and <= '~') b.Append(c);
            else b.Append($"\\u{(int)c:x4}");
        }
        return b.Append('"').ToString();
    }

    /// <summary>
    /// Runs <paramref name="batch"/> on a worker thread and fails if it does not finish within
    /// <paramref name="timeout"/>: a hang in a parser then shows up as a failure naming the case
    /// that was running (reported through <paramref name="current"/>), not as a stuck test run.
    /// </summary>
    public static void RunWithTimeout(TimeSpan timeout, Func<string> current, Action<CancellationToken> batch)
    {
        using var cts = new CancellationTokenSource();
        var task = Task.Factory.StartNew(() => batch(cts.Token), cts.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(timeout))
        {
            cts.Cancel();
            Assert.Fail($"Batch did not finish within {timeout.TotalSeconds:0.#} s (hang?); seed 0x{Seed:x}; running: {current()}");
        }
        task.GetAwaiter().GetResult(); // rethrows assertion failures from the batch
    }

    public static void Report(ITestOutputHelper output, string what, long cases, Stopwatch sw, TimeSpan slowest, string slowestCase) =>
        output.WriteLine($"{what}: {cases:N0} cases in {sw.Elapsed.TotalSeconds:0.00} s (seed 0x{Seed:x}{(Long ? ", LONG" : "")}); slowest case {slowest.TotalMilliseconds:0.0} ms: {slowestCase}");
}

/// <summary>SplitMix64: tiny, fast and fully deterministic across runtimes (unlike System.Random's seeding).</summary>
public struct Rng
{
    private ulong _state;

    public Rng(ulong seed, ulong stream, ulong index) =>
        _state = seed ^ (stream * 0x9E3779B97F4A7C15UL) ^ (index * 0xD1B54A32D192ED03UL);

    public ulong NextU64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => n <= 0 ? 0 : (int)(NextU64() % (ulong)n);
    public int Next(int lo, int hi) => lo + Next(hi - lo);
    public bool Chance(int percent) => Next(100) < percent;
    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];
}
