using System.Text;
using System.Text.Json;
using Pyprobe.Faults.Tests.Support;

namespace Pyprobe.Faults.Tests;

/// <summary>
/// File and function names that are empty, not ASCII, not UTF-8, or longer than the 4096 bytes an
/// event carries. Text output stays one line per event with invalid bytes as \xNN; JSON stays valid;
/// a string longer than 4096 bytes keeps exactly 4096 and is marked ("..." in text,
/// "NAME_truncated": true in JSON); one of exactly 4096 bytes is whole and not marked.
/// </summary>
public class OddNameTests
{
    // Every case calls a function with its own name, so its entry event can be found.
    private const string Setup =
        "import ctypes\n" +
        "def call(filename, name):\n" +
        "    ns = {}\n" +
        "    exec(compile('def ' + name + '():\\n    pass\\n', filename, 'exec'), ns)\n" +
        "    ns[name]()\n" +
        "ctypes.pythonapi.PySys_Audit.argtypes = [ctypes.c_char_p, ctypes.c_char_p]\n";
    private const string Measured =
        "call('A' * 4095, 'f_4095')\n" +
        "call('B' * 4096, 'f_4096')\n" +
        "call('C' * 4097, 'f_4097')\n" +
        "call('D' * 5000, 'f_5000')\n" +
        "call('\\u20ac' * 2000, 'f_euro')\n" +         // 6000 bytes: the cut falls inside a character
        "call('', 'f_empty')\n" +
        "call('caf\\u00e9.py', '\\u00f1and\\u00fa_\\u03b4')\n" +
        "call('odd.py', 'g' * 5000)\n" +
        "call('line\\nbreak\\ttab.py', 'f_control')\n" +
        // CPython cannot encode this name as UTF-8: its probe passes NULL (and 3.9 then raises in the module frame).
        "try:\n    call('\\udcff\\udcfe.py', 'f_surrogate')\nexcept UnicodeEncodeError:\n    pass\n" +
        "sys.audit('E' * 5000)\n" +
        "ctypes.pythonapi.PySys_Audit(b'bad\\xff\\xfe\\x80name', None)\n";

    [Fact]
    public void OddNamesAreEscapedCutAndMarkedExactly()
    {
        Requirements.EnsureRoot();
        var python = CachedPythons.Get("3.9");
        using var workload = new PythonWorkload(python.Command(), Setup, Measured);
        using var json = new TempFile();
        using var text = new TempFile();
        using var jsonTrace = TraceProcess.Start(["trace", "function__entry", "audit", "--format", "json", "-o", json.Path, "-p", workload.Pid.ToString()]);
        using var textTrace = TraceProcess.Start(["trace", "function__entry", "audit", "--time", "none", "-o", text.Path, "-p", workload.Pid.ToString()]);
        workload.RunMeasuredPart(TimeSpan.FromSeconds(60));
        foreach (var t in new[] { jsonTrace, textTrace })
        {
            t.Signal(Posix.SigInt);
            var result = t.Finish(TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains(", 0 lost", result.Stderr);
        }

        // JSON: every line parses; strings as expected.
        var events = new TraceOutput(File.ReadAllText(json.Path, Encoding.UTF8)).Events;
        JsonElement Entry(string function) => Assert.Single(events, e => e.GetProperty("probe").GetString() == "function__entry" && e.GetProperty("funcname").GetString() == function);
        void AssertFile(string function, string filename, bool truncated)
        {
            var e = Entry(function);
            Assert.Equal(filename, e.GetProperty("filename").GetString());
            Assert.Equal(truncated, e.TryGetProperty("filename_truncated", out var flag) && flag.GetBoolean());
            Assert.False(e.TryGetProperty("funcname_truncated", out _));
        }
        AssertFile("f_4095", new string('A', 4095), false);
        AssertFile("f_4096", new string('B', 4096), false);
        AssertFile("f_4097", new string('C', 4096), true);
        AssertFile("f_5000", new string('D', 4096), true);
        AssertFile("f_euro", string.Concat(Enumerable.Repeat("\u20ac", 1365)) + "\\xe2", true); // 1365 × 3 bytes + the first byte of the next
        AssertFile("f_empty", "", false);
        AssertFile("\u00f1and\u00fa_\u03b4", "caf\u00e9.py", false);
        AssertFile("f_control", "line\nbreak\ttab.py", false);
        // <module> frames with an empty filename: f_empty's, and the NULL one of the unencodable name.
        Assert.Equal(2, events.Count(e => e.GetProperty("probe").GetString() == "function__entry" && e.GetProperty("funcname").GetString() == "<module>" && e.GetProperty("filename").GetString() == ""));
        var longName = Assert.Single(events, e => e.GetProperty("probe").GetString() == "function__entry" && e.GetProperty("funcname").GetString()!.StartsWith("ggg", StringComparison.Ordinal));
        Assert.Equal(new string('g', 4096), longName.GetProperty("funcname").GetString());
        Assert.True(longName.GetProperty("funcname_truncated").GetBoolean());
        var audits = events.Where(e => e.GetProperty("probe").GetString() == "audit").ToList();
        var longEvent = Assert.Single(audits, e => e.GetProperty("event").GetString()!.StartsWith("EEE", StringComparison.Ordinal));
        Assert.Equal(new string('E', 4096), longEvent.GetProperty("event").GetString());
        Assert.True(longEvent.GetProperty("event_truncated").GetBoolean());
        Assert.Single(audits, e => e.GetProperty("event").GetString() == "bad\\xff\\xfe\\x80name");

        // Text: one line per event, raw UTF-8 where valid, \xNN for invalid bytes and control characters.
        var lines = File.ReadAllText(text.Path, Encoding.UTF8).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Matches("^(function__entry filename=.*, funcname=.*, lineno=-?[0-9]+|audit event=.*)$", l));
        Assert.Contains($"function__entry filename={new string('A', 4095)}, funcname=f_4095, lineno=1", lines);
        Assert.Contains($"function__entry filename={new string('B', 4096)}, funcname=f_4096, lineno=1", lines);
        Assert.Contains($"function__entry filename={new string('C', 4096)}..., funcname=f_4097, lineno=1", lines);
        Assert.Contains($"function__entry filename={new string('D', 4096)}..., funcname=f_5000, lineno=1", lines);
        Assert.Contains($"function__entry filename={string.Concat(Enumerable.Repeat("\u20ac", 1365))}\\xe2..., funcname=f_euro, lineno=1", lines);
        Assert.Contains("function__entry filename=, funcname=f_empty, lineno=1", lines);
        Assert.Contains("function__entry filename=caf\u00e9.py, funcname=\u00f1and\u00fa_\u03b4, lineno=1", lines);
        Assert.Contains($"function__entry filename=odd.py, funcname={new string('g', 4096)}..., lineno=1", lines);
        Assert.Contains("function__entry filename=line\\x0abreak\\x09tab.py, funcname=f_control, lineno=1", lines);
        Assert.Equal(2, lines.Count(l => l == "function__entry filename=, funcname=<module>, lineno=1"));
        Assert.Contains($"audit event={new string('E', 4096)}...", lines);
        Assert.Contains("audit event=bad\\xff\\xfe\\x80name", lines);
        Assert.Equal(events.Count, lines.Length);
    }
}
