using System.Text;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// A raw-tracepoint program attached with <c>BPF_RAW_TRACEPOINT_OPEN</c> (4.17+): it runs on every hit of the
/// tracepoint, on every CPU, until the link is disposed. The program sees the tracepoint's arguments as
/// <c>u64 args[]</c>, without the perf tracepoint's buffer copy.
/// </summary>
public sealed unsafe class RawTracepointLink : IDisposable
{
    private readonly KernelFileDescriptor _fd;

    private RawTracepointLink(KernelFileDescriptor fd, string tracepoint)
    {
        _fd = fd;
        Tracepoint = tracepoint;
    }

    public string Tracepoint { get; }

    /// <param name="program">Loaded as <see cref="ProgramType.RawTracepoint"/>.</param>
    /// <param name="tracepoint">The tracepoint's name without its group, e.g. <c>sched_switch</c>.</param>
    /// <exception cref="SyscallException">No such tracepoint, or no permission.</exception>
    public static RawTracepointLink Attach(BpfProgram program, string tracepoint)
    {
        if (program.Spec.Type != ProgramType.RawTracepoint)
            throw new ArgumentException($"program '{program.Spec.Name}' is a {program.Spec.Type} program; a raw tracepoint runs raw-tracepoint programs");
        var name = Encoding.ASCII.GetBytes(tracepoint + "\0");
        fixed (byte* namePointer = name)
        {
            var attr = new RawTracepointOpenAttr { Name = (ulong)namePointer, ProgFd = (uint)program.Fd.Value };
            return new RawTracepointLink(BpfSyscall.CreateFd(BpfCommand.RawTracepointOpen, ref attr, $"attaching to raw tracepoint {tracepoint}"), tracepoint);
        }
    }

    public void Dispose() => _fd.Dispose();
}
