using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// Independent reference for call frame tables: the rows binutils' <c>readelf --debug-dump=frames-interp</c> prints
/// for every FDE of .eh_frame (CIE rows are left out). Each cell is readelf's own text: a CFA like "rsp+16" or
/// "exp", a rule like "c-8", "u" (undefined, or a column some other row mentions), "s", "v+8", "exp", "r3 (rbx)".
/// </summary>
public static partial class ReadelfFrames
{
    /// <summary>One printed row of an FDE covering [Function, FunctionEnd); Rbp is null when the FDE has no rbp column.</summary>
    public sealed record Row(ulong Function, ulong FunctionEnd, ulong Location, string Cfa, string ReturnAddress, string? Rbp);

    [GeneratedRegex(@"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.([0-9a-f]+)")]
    private static partial Regex FdeRegex();

    [GeneratedRegex(@"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ (CIE|ZERO)")]
    private static partial Regex CieRegex();

    // A DW_CFA_register rule prints as "r3 (rbx)": one cell with a space in it.
    [GeneratedRegex(@"r\d+ \(\w+\)|\S+")]
    private static partial Regex CellRegex();

    public static IReadOnlyList<Row> Rows(string path)
    {
        var psi = new ProcessStartInfo("readelf", ["-W", "--debug-dump=frames-interp", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var rows = new List<Row>();
        (ulong Start, ulong End)? fde = null;
        string[] columns = [];
        while (p.StandardOutput.ReadLine() is { } line)
        {
            if (FdeRegex().Match(line) is { Success: true } header)
            {
                fde = (Hex(header.Groups[1].Value), Hex(header.Groups[2].Value));
                columns = [];
                continue;
            }
            if (CieRegex().IsMatch(line)) { fde = null; continue; }
            if (fde is null) continue;
            var cells = CellRegex().Matches(line).Select(m => m.Value).ToArray();
            if (cells.Length == 0) continue;
            if (cells[0] == "LOC") { columns = cells; continue; }
            if (cells[0].Length != 16 || columns.Length == 0) continue;
            Assert.Equal(columns.Length, cells.Length);
            var rbp = Array.IndexOf(columns, "rbp");
            rows.Add(new Row(fde.Value.Start, fde.Value.End, Hex(cells[0]), cells[1], cells[Array.IndexOf(columns, "ra")], rbp < 0 ? null : cells[rbp]));
        }
        p.WaitForExit();
        // No exit-code check: binutils 2.40 exits 1 on Debian's libc.so.6 with the full table printed and nothing on stderr.
        Assert.NotEmpty(rows);
        return rows;
    }

    private static ulong Hex(string digits) => ulong.Parse(digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
