using System.Text;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Programs;

/// <summary>A loaded BPF program. Links hold their own reference, so it can be disposed once attached.</summary>
public sealed unsafe class BpfProgram : IDisposable
{
    private const uint LogLevelBranch = 1;
    private const uint FirstLogSize = 64 * 1024;
    private const uint MaxLogSize = uint.MaxValue >> 2;

    private BpfProgram(ProgramSpec spec, KernelFileDescriptor fd)
    {
        Spec = spec;
        Fd = fd;
    }

    public ProgramSpec Spec { get; }
    public KernelFileDescriptor Fd { get; }

    /// <summary>
    /// Loads quietly first (the log costs verifier time); on failure reloads with the log on, growing the
    /// buffer on ENOSPC, so the error carries the verifier's own words (cilium/ebpf's strategy).
    /// </summary>
    public static BpfProgram Load(ProgramSpec spec)
    {
        if (spec.Bytecode.Length == 0 || spec.Bytecode.Length % 8 != 0)
            throw new ArgumentException($"program '{spec.Name}' bytecode must be a non-empty multiple of 8 bytes");

        var result = TryLoad(spec, logSize: 0, out _, out _);
        if (result >= 0) return new BpfProgram(spec, KernelFileDescriptor.Own((int)result));

        var firstErrno = (int)-result;
        var logSize = FirstLogSize;
        while (true)
        {
            result = TryLoad(spec, logSize, out var log, out var trueSize);
            if (result >= 0) return new BpfProgram(spec, KernelFileDescriptor.Own((int)result)); // flaky first failure (e.g. signal)
            var errno = (int)-result;
            if (errno == (int)Errno.ENOSPC && logSize < MaxLogSize)
            {
                logSize = trueSize > logSize ? trueSize : Math.Min(MaxLogSize, logSize * 2);
                continue;
            }
            throw new VerifierException(spec.Name, errno == (int)Errno.ENOSPC ? firstErrno : errno, log, Hint(errno, log), Asm.Disassembler.Disassemble(spec.Bytecode.Span));
        }
    }

    private static string Hint(int errno, string log) => errno switch
    {
        (int)Errno.EPERM when log.Length == 0 => "needs CAP_BPF and CAP_PERFMON (or root); on kernels before 5.11 RLIMIT_MEMLOCK may be too low",
        (int)Errno.EFAULT => "the kernel reported an internal verifier error",
        _ => "",
    };

    private static long TryLoad(ProgramSpec spec, uint logSize, out string log, out uint trueSize)
    {
        var license = Encoding.ASCII.GetBytes(spec.License + "\0");
        var logBuffer = logSize == 0 ? null : new byte[logSize];
        var functions = FunctionInfo.For(spec.Bytecode.Span);
        fixed (byte* insns = spec.Bytecode.Span)
        fixed (byte* licensePointer = license)
        fixed (byte* logPointer = logBuffer)
        fixed (byte* functionsPointer = functions)
        {
            var attr = new ProgLoadAttr
            {
                ProgType = (uint)spec.Type,
                InsnCount = (uint)spec.SlotCount,
                Insns = (ulong)insns,
                License = (ulong)licensePointer,
                LogLevel = logSize == 0 ? 0 : LogLevelBranch,
                LogSize = logSize,
                LogBuf = (ulong)logPointer,
                ExpectedAttachType = (uint)spec.ExpectedAttachType,
            };
            if (functions is not null)
            {
                attr.ProgBtfFd = (uint)Btf.FunctionBtf.Fd.Value;
                attr.FuncInfoRecSize = FunctionInfo.RecordSize;
                attr.FuncInfo = (ulong)functionsPointer;
                attr.FuncInfoCount = (uint)(functions.Length / FunctionInfo.RecordSize);
            }
            ObjectName.Write(spec.Name, attr.ProgName);
            var result = BpfSyscall.Invoke(BpfCommand.ProgLoad, ref attr);
            trueSize = attr.LogTrueSize;
            log = logBuffer is null ? "" : Encoding.UTF8.GetString(logBuffer.AsSpan(0, Math.Max(0, Array.IndexOf(logBuffer, (byte)0) is var end && end >= 0 ? end : logBuffer.Length)));
            return result;
        }
    }

    public void Dispose() => Fd.Dispose();
}
