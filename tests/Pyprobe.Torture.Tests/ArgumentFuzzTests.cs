using System.Diagnostics;
using System.Text;
using Pyprobe.Usdt;
using Xunit.Abstractions;

namespace Pyprobe.Torture.Tests;

/// <summary>
/// Feeds UsdtArgumentParser ≥ 100,000 generated argument strings per run: random bytes, random
/// printable text, grammar-aware mutations of every real spec form, huge/overflowing numbers,
/// empty tokens, runs of whitespace, 100-argument lists and unicode. Each case must either parse
/// into consistent fields or fail with a UsdtException naming the offending text.
/// </summary>
[Collection(Torture.Collection)]
public class ArgumentFuzzTests(ITestOutputHelper output)
{
    /// <summary>Per-case bound: the parser is linear in its input, so anything near this is a bug.</summary>
    public static readonly TimeSpan CaseLimit = TimeSpan.FromMilliseconds(250);

    public static readonly string[] ValidSpecs =
    [
        "-4@%eax", "8@-1204(%rbp)", "8@(%rsp)", "-1@-96(%rbp,%rax,8)", "-8@g_counter(%rip)",
        "-4@12+g_table(%rip)", "4@$-42", "8@$0x7fffffffffffffff", "8@%rbp", "8@%r12", "-2@%r9w",
        "1@%sil", "4@16(%r8d)", "8@sym+0x10(%rip)", "4@counter.0(%rip)", "8@(%rbx,%rcx)",
        "2@0x20(%r10,%r11,1)", "8@$0xffffffffffffffff", "-8@$-9223372036854775808", "8@16(%rip)",
    ];

    private static readonly string[] Registers =
    [
        "rax", "eax", "ax", "al", "rsp", "esp", "spl", "rip", "eip", "r8", "r15d", "r9w", "r12b", "rbp", "bpl",
        "ah", "bh", "xmm0", "r16", "", "RAX", "rax ", "st(0)", "%rax", "r", "e", "ri", "rıp", "гax",
    ];

    private static readonly string[] Sizes =
    [
        "1", "2", "4", "8", "-1", "-2", "-4", "-8", "+4", "04", "0", "3", "16", "-0", "", "-", "+",
        "-2147483648", "2147483648", "2147483647", "99999999999999999999", "0x4", "٤", "4 ", " 4", "--4", "8@",
    ];

    private static readonly string[] Numbers =
    [
        "0", "1", "-1", "12", "-1204", "0x10", "-0x10", "0X7f", "0x", "-0x", "0x-1", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "99999999999999999999",
        "0xffffffffffffffff", "0x10000000000000000", "-0xffffffffffffffff", "00000000000000000000000001",
        "1e3", "+5", "--5", "+-5", "٣", "1_000", "0b101", "", "$", "$$", "∞",
    ];

    private static readonly string[] Scales = ["1", "2", "4", "8", "0", "3", "16", "", "-1", "+2", "4294967298", "99999999999999999999", "0x2", "%rax"];

    private static readonly string[] Symbols =
    [
        "g_counter", "sym", "_ZN3foo3barE", "counter.0", ".L1", "a$b", "x", "9sym", "sym@GOTPCREL", "s\u00e9", "名前", "",
    ];

    private const string GrammarChars = "0123456789-+@%$(),.:_xXabcdehilprsw \t";
    private static readonly string[] Unicode = ["\u00e9", "\u0660", "\u200b", "\ud83d\ude00", "\ufffd", "\u0000", "\u00a0", "\u2028", "\ud800", "ﬁ", "Ｏ"];

    // Generates case `index` of stream `kind`; pure function of (seed, kind, index).
    internal static string Generate(ulong seed, int index)
    {
        var r = new Rng(seed, 1, (ulong)index);
        return (index % 10) switch
        {
            8 => WellFormed(ref r),
            9 => string.Join(r.Chance(80) ? " " : "  \t ", WellFormedList(ref r)),
            0 => RandomBytes(ref r),
            1 => RandomPrintable(ref r),
            2 => Mutate(ref r, r.Pick(ValidSpecs)),
            3 => Structured(ref r),
            4 => List(ref r, r.Next(0, 16)),
            5 => r.Chance(20) ? List(ref r, r.Next(90, 110)) : Mutate(ref r, List(ref r, r.Next(1, 14))),
            6 => RandomFrom(ref r, GrammarChars, r.Next(0, 30)),
            _ => Mutate(ref r, Structured(ref r)),
        };
    }

    private static string RandomBytes(ref Rng r)
    {
        var bytes = new byte[r.Next(0, 48)];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)r.Next(256);
        return r.Chance(50) ? Encoding.UTF8.GetString(bytes) : Encoding.Latin1.GetString(bytes);
    }

    private static string RandomPrintable(ref Rng r)
    {
        var c = new char[r.Next(0, 40)];
        for (int i = 0; i < c.Length; i++) c[i] = (char)r.Next(32, 127);
        return new string(c);
    }

    private static string RandomFrom(ref Rng r, string alphabet, int length)
    {
        var c = new char[length];
        for (int i = 0; i < c.Length; i++) c[i] = alphabet[r.Next(alphabet.Length)];
        return new string(c);
    }

    private static string Register(ref Rng r) => r.Chance(85) ? "%" + r.Pick(Registers) : r.Pick(Registers);

    private static string Number(ref Rng r) => r.Next(4) switch
    {
        0 => r.Pick(Numbers),
        1 => ((long)r.NextU64()).ToString(),
        2 => "0x" + r.NextU64().ToString("x") + (r.Chance(30) ? r.Next(16).ToString("x") : ""),
        _ => r.Next(-5000, 5000).ToString(),
    };

    private static string Structured(ref Rng r)
    {
        string size = r.Pick(Sizes);
        string operand = r.Next(7) switch
        {
            0 => "$" + Number(ref r),
            1 => Register(ref r),
            2 => (r.Chance(70) ? Number(ref r) : "") + "(" + Register(ref r) + ")",
            3 => (r.Chance(70) ? Number(ref r) : "") + "(" + Register(ref r) + "," + Register(ref r) + (r.Chance(70) ? "," + r.Pick(Scales) : "") + ")",
            4 => SymbolDisplacement(ref r) + "(%" + (r.Chance(85) ? "rip" : r.Pick(Registers)) + ")",
            5 => SymbolDisplacement(ref r) + "(" + Register(ref r) + "," + Register(ref r) + ")",
            _ => RandomFrom(ref r, GrammarChars, r.Next(0, 12)),
        };
        return r.Chance(97) ? size + "@" + operand : size + operand;
    }

    private static readonly string[] GoodSizes = ["1", "2", "4", "8", "-1", "-2", "-4", "-8"];
    private static readonly string[] GoodRegisters = [.. Registers.Take(15)];
    private static readonly string[] GoodIndexRegisters = ["rax", "eax", "rbx", "r8", "r15d", "rbp"];

    // Random but valid specs: exercise the accepting paths with values no fixed list has.
    private static string WellFormed(ref Rng r)
    {
        string size = r.Pick(GoodSizes);
        string disp = r.Next(3) switch { 0 => "", 1 => ((long)r.NextU64()).ToString(), _ => "0x" + r.NextU64().ToString("x") };
        string operand = r.Next(5) switch
        {
            0 => "$" + (r.Chance(50) ? ((long)r.NextU64()).ToString() : "0x" + r.NextU64().ToString("x")),
            1 => "%" + r.Pick(GoodRegisters),
            2 => disp + "(%" + r.Pick(GoodRegisters) + ")",
            3 => disp + "(%" + r.Pick(GoodRegisters) + ",%" + r.Pick(GoodIndexRegisters) + (r.Chance(70) ? "," + r.Pick(["1", "2", "4", "8"]) : "") + ")",
            _ => r.Pick(Symbols[..5]) + (r.Chance(50) ? "" : (r.Chance(50) ? "+" : "-") + r.Next(0, 100000)) + "(%rip)",
        };
        return size + "@" + operand;
    }

    private static List<string> WellFormedList(ref Rng r)
    {
        var list = new List<string>();
        int n = r.Next(0, 13);
        for (int i = 0; i < n; i++) list.Add(WellFormed(ref r));
        return list;
    }

    private static string SymbolDisplacement(ref Rng r)
    {
        string sym = r.Pick(Symbols);
        return r.Next(5) switch
        {
            0 => sym,
            1 => sym + "+" + Number(ref r),
            2 => sym + "-" + Number(ref r),
            3 => Number(ref r) + "+" + sym,
            _ => Number(ref r) + "+" + sym + (r.Chance(50) ? "-" : "+") + Number(ref r) + (r.Chance(30) ? "+" + r.Pick(Symbols) : ""),
        };
    }

    private static string List(ref Rng r, int count)
    {
        var b = new StringBuilder();
        if (r.Chance(20)) b.Append(' ', r.Next(1, 50));
        for (int i = 0; i < count; i++)
        {
            if (i > 0)
            {
                int ws = r.Chance(80) ? 1 : r.Next(2, 40);
                for (int k = 0; k < ws; k++) b.Append(r.Chance(85) ? ' ' : '\t');
            }
            b.Append(r.Chance(60) ? r.Pick(ValidSpecs) : Structured(ref r));
        }
        if (r.Chance(20)) b.Append(' ', r.Next(1, 50));
        return b.ToString();
    }

    private static string Mutate(ref Rng r, string s)
    {
        var b = new StringBuilder(s);
        int n = r.Next(1, 5);
        for (int m = 0; m < n; m++)
        {
            int pos = r.Next(b.Length + 1);
            switch (r.Next(10))
            {
                case 0: if (b.Length > 0 && pos < b.Length) b.Remove(pos, 1); break;
                case 1: b.Insert(pos, GrammarChars[r.Next(GrammarChars.Length)]); break;
                case 2: if (pos < b.Length) b[pos] = GrammarChars[r.Next(GrammarChars.Length)]; break;
                case 3: b.Insert(pos, r.Pick(Numbers)); break;
                case 4: b.Insert(pos, r.Pick(Unicode)); break;
                case 5: b.Insert(pos, new string(' ', r.Next(1, 30))); break;
                case 6: // duplicate a chunk
                    if (b.Length > 0)
                    {
                        int from = r.Next(b.Length), len = r.Next(1, Math.Min(12, b.Length - from) + 1);
                        b.Insert(pos, b.ToString(from, len));
                    }
                    break;
                case 7: // cut a chunk (empty tokens, missing parts)
                    if (b.Length > 0 && pos < b.Length) b.Remove(pos, r.Next(1, b.Length - pos + 1));
                    break;
                case 8: b.Insert(pos, r.Pick(["@", "%", "$", "(", ")", ",", "+", "-", "@@", "()", "(,)", ",,", "%%"])); break;
                default: b.Insert(pos, r.Pick(Registers)); break;
            }
        }
        return b.ToString();
    }

    /// <summary>Returns null if the outcome is acceptable, else a complaint.</summary>
    internal static string? RunCase(string text)
    {
        // Whole-list parse.
        try
        {
            var args = UsdtArgumentParser.ParseList(text, "fuzz:probe");
            if (Invariants.CheckArguments(args, text) is { } bad) return "ParseList accepted an inconsistent result: " + bad;
            // Determinism: every accepted token re-parses to the same value on its own.
            foreach (var a in args)
                if (!Equals(UsdtArgumentParser.Parse(a.Text, "fuzz:probe"), a)) return $"re-parse of '{a.Text}' differs";
        }
        catch (UsdtArgumentException e)
        {
            if (e.ArgumentText.Length == 0 && text.Trim().Length != 0) return "UsdtArgumentException with empty ArgumentText";
            if (!text.Contains(e.ArgumentText, StringComparison.Ordinal)) return $"exception names '{e.ArgumentText}', which is not in the input";
            if (!e.Message.Contains(e.ArgumentText, StringComparison.Ordinal) || !e.Message.Contains("fuzz:probe")) return $"message does not name the text/probe: {e.Message}";
        }
        catch (UsdtException e)
        {
            return $"plain UsdtException instead of UsdtArgumentException: {e.Message}";
        }
        catch (Exception e)
        {
            return $"ParseList threw {e.GetType().Name}: {e.Message}";
        }

        // Single-token parse of the raw text (spaces and all).
        try
        {
            var a = UsdtArgumentParser.Parse(text, "fuzz:one");
            if (Invariants.CheckArgument(a) is { } bad) return "Parse accepted an inconsistent result: " + bad;
            if (a.Text != text) return $"Parse kept text '{a.Text}'";
        }
        catch (UsdtArgumentException e)
        {
            if (e.ArgumentText != text) return $"Parse exception names '{e.ArgumentText}' instead of the token";
            if (!e.Message.Contains(text, StringComparison.Ordinal)) return $"Parse message does not name the token: {e.Message}";
        }
        catch (Exception e)
        {
            return $"Parse threw {e.GetType().Name}: {e.Message}";
        }
        return null;
    }

    [Fact]
    public void GeneratedArgumentStrings_ParseConsistentlyOrFailWithUsdtArgumentException()
    {
        ulong seed = Torture.Seed;
        int total = Torture.Scale(120_000);
        int current = -1;
        long slowestTicks = 0;
        int slowestCase = 0;
        var sw = Stopwatch.StartNew();
        var failures = new List<string>();
        Torture.RunWithTimeout(TimeSpan.FromSeconds(Torture.Long ? 600 : 30),
            () => current < 0 ? "(not started)" : $"case {current}: {Torture.Escape(Generate(seed, current))}",
            token =>
            {
                for (int i = 0; i < total && !token.IsCancellationRequested; i++)
                {
                    Volatile.Write(ref current, i);
                    string text = Generate(seed, i);
                    long t0 = Stopwatch.GetTimestamp();
                    string? problem = RunCase(text);
                    long dt = Stopwatch.GetTimestamp() - t0;
                    // Re-time an apparently slow case once: a stall from the scheduler or GC on a
                    // busy 2-core machine is not repeatable, a pathological input is.
                    if (Stopwatch.GetElapsedTime(0, dt) > CaseLimit) { t0 = Stopwatch.GetTimestamp(); RunCase(text); dt = Stopwatch.GetTimestamp() - t0; }
                    if (dt > slowestTicks) { slowestTicks = dt; slowestCase = i; }
                    if (problem is not null && failures.Count < 20)
                        failures.Add($"seed 0x{seed:x} case {i}: {Torture.Escape(text)} -> {problem}");
                }
            });
        sw.Stop();
        var slowest = Stopwatch.GetElapsedTime(0, slowestTicks);
        Torture.Report(output, "argument strings", total, sw, slowest, $"case {slowestCase} {Torture.Escape(Generate(seed, slowestCase))}");
        Assert.True(failures.Count == 0, $"{failures.Count} failing case(s):\n" + string.Join("\n", failures));
        // Per-case time bound: the parser is linear in the input, so no case may take long.
        Assert.True(slowest < CaseLimit, $"case {slowestCase} took {slowest.TotalMilliseconds} ms: {Torture.Escape(Generate(seed, slowestCase))}");
    }

    [Fact]
    public void GeneratorCoversTheInterestingShapes()
    {
        // Guard against a generator regression silently turning the fuzz into noise: a good share
        // of cases must parse, and a good share must be rejected.
        int ok = 0, rejected = 0;
        for (int i = 0; i < 4000; i++)
        {
            try { UsdtArgumentParser.ParseList(Generate(Torture.Seed, i)); ok++; }
            catch (UsdtException) { rejected++; }
        }
        output.WriteLine($"parsed {ok}, rejected {rejected}");
        Assert.InRange(ok, 400, 3600);
        Assert.InRange(rejected, 400, 3600);
    }
}
