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
            using var config = BpfMap.Create(MapSpec.Hash("pp_walk_cfg", 4, StackWalkConfig.Size, 64));
            using var threads = BpfMap.Create(new MapSpec("pp_tstates", MapType.LruHash, 4, 8, 4096));
            using var scratch = BpfMap.Create(MapSpec.PerCpuArray("pp_walk_tmp", (uint)StackSampleProgram.ScratchValueSize(256), 1));
            using var ring = BpfMap.Create(MapSpec.RingBuffer("pp_samples", 1 << 20));
            using var programs = BpfMap.Create(new MapSpec("pp_walk_next", MapType.ProgramArray, 4, 4, 1));
            var maps = new StackSampleMaps(config.Fd.Value, threads.Fd.Value, scratch.Fd.Value, ring.Fd.Value, programs.Fd.Value);
            using var program = BpfProgram.Load(new ProgramSpec("pp_stack_walk", ProgramType.PerfEvent, StackSampleProgram.Generate(maps, 256, 0).Bytecode));
            programs.Update(BitConverter.GetBytes(0), BitConverter.GetBytes(program.Fd.Value));
            config.Update(BitConverter.GetBytes(python.Id), cfg.ToBytes());
            var events = new List<KernelFileDescriptor>();
            for (var cpu = 0; cpu < Environment.ProcessorCount; cpu++)
            {
                var attr = new PerfEventAttr { Type = 1, Size = PerfEventAttr.SizeVer1, Config = 0, SamplePeriod = 99, Flags = 1 | (1 << 10) };
                var fd = PerfEvent.Open(ref attr, -1, cpu);
                PerfEvent.Ioctl(fd, PerfEvent.IocSetBpf, program.Fd.Value, "set bpf");
                PerfEvent.Ioctl(fd, PerfEvent.IocEnable, 0, "enable");
                events.Add(fd);
            }
            Thread.Sleep(1500);
            foreach (var e in events) e.Dispose();
            using var reader = new RingBufferReader(ring);
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
