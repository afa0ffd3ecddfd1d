using System.Diagnostics;
using ELFSharp.ELF;
using Pyprobe.Usdt;
using Xunit.Abstractions;
namespace Pyprobe.Torture.Tests;
public class ScratchTests(ITestOutputHelper output)
{
    [Fact]
    public void Scratch()
    {
        var inputs = RealBinaries.Get(output);
        foreach (var b in inputs)
        {
            for (int i = 0; i < 300; i++) UsdtBinary.OpenInMemory(b.Label, b.Bytes, b.Bytes.Length);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 100; i++) UsdtBinary.OpenInMemory(b.Label, b.Bytes, b.Bytes.Length);
            double full = sw.Elapsed.TotalMilliseconds / 100;
            sw.Restart();
            for (int i = 0; i < 100; i++) { using var ms = new MemoryStream(b.Bytes, 0, b.Bytes.Length, false); ELFReader.TryLoad(ms, false, out IELF? e); e!.Dispose(); }
            output.WriteLine($"{b.Label}: {full:0.00} ms/open, elfsharp {sw.Elapsed.TotalMilliseconds / 100:0.00}");
        }
    }
}
