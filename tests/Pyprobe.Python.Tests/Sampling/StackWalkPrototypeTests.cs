using System.Diagnostics;
using System.Text;
using Pyprobe.Bpf.Maps;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;
using Pyprobe.Python.Sampling;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.Tests.Sampling;

public class StackWalkPrototypeTests
{
    [Fact]
    public void WalksAPyenv312Process()
    {
        Requirements.EnsureRoot();
        const string lib = "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0";
        var script = "def c():\n    x = 0\n    while True:\n        x += 1\ndef b():\n    c()\ndef a():\n    b()\na()\n";
        using var python = Process.Start(new ProcessStartInfo("/root/.pyenv/versions/3.12.1/bin/python3.12", ["-c", script]))!;
        try
        {
            Thread.Sleep(300);
            var elf = ElfImage.Open(lib);
            var runtimeVaddr = elf.ResolveSymbolAddress("_PyRuntime");
            var runtime = TargetMemory.RuntimeAddress(python.Id, lib, elf.TryVirtualAddressToFileOffset(runtimeVaddr)!.Value);
            var cfg = new StackWalkConfig
            {
                RuntimeAddress = runtime, InterpretersHead = 40, InterpreterNext = 0, InterpreterThreadsHead = 72,
                ThreadNext = 8, ThreadMatch = 144, MatchByFsBase = false, ThreadTopFrame = 56, CFrameCurrentFrame = 0,
                FrameReadSize = 80, FrameCode = 0, FramePrevious = 8, FramePosition = 56, PositionIsPointer = true,
                CodeAdaptive = 192, FrameOwner = 70, OwnerSkipFrom = 3, CodeFirstLineNo = 68,
            };
            using var sampler = StackSampler.Start(new StackSamplerOptions(Frequency: 99, MaxDepth: 256));
            sampler.AddProcess(python.Id, cfg);
            Thread.Sleep(1500);
            var reader = sampler.Reader;
            var lines = new List<string>();
            using var mem = new FileStream($"/proc/{python.Id}/mem", FileMode.Open, FileAccess.Read);
            string Name(ulong code)
            {
                var buf = new byte[8];
                mem.Seek((long)code + 120, SeekOrigin.Begin); mem.ReadExactly(buf);
                var str = BitConverter.ToUInt64(buf);
                mem.Seek((long)str + 16, SeekOrigin.Begin); mem.ReadExactly(buf);
                var len = (int)BitConverter.ToUInt64(buf);
                var text = new byte[len];
                mem.Seek((long)str + 40, SeekOrigin.Begin); mem.ReadExactly(text);
                return Encoding.ASCII.GetString(text);
            }
            reader.Drain(record =>
            {
                var r = new StackSampleRecord(record);
                var names = new List<string>();
                for (var i = 0; i < r.FrameCount; i++) names.Add($"{Name(r.Frame(i).Code)}@{r.Frame(i).FirstLineNo}+{r.Frame(i).Position}");
                lines.Add($"{r.Pid}/{r.Tid} flags={r.Flags} {string.Join(";", names)}");
            });
            File.WriteAllLines("/tmp/walk-proto.txt", lines);
            Assert.NotEmpty(lines);
            Assert.Contains(lines, l => l.Contains("c@1") && l.Contains("b@5") && l.Contains("a@7"));
        }
        finally { python.Kill(); }
    }
}
