using System.Text;
using Pyprobe.Bpf.Programs;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Links;

/// <summary>A BPF_TRACE_UPROBE_MULTI link: every site of one program in one file, in one syscall.</summary>
public sealed unsafe class UprobeMultiLink : IUprobeLink
{
    private const uint ReturnProbeFlag = 1; // BPF_F_UPROBE_MULTI_RETURN

    private readonly KernelFileDescriptor _fd;

    private UprobeMultiLink(KernelFileDescriptor fd, int siteCount)
    {
        _fd = fd;
        SiteCount = siteCount;
    }

    public int SiteCount { get; }

    /// <param name="pid">0 = every process that maps the file; otherwise a TGID in our pid namespace.</param>
    public static UprobeMultiLink Attach(BpfProgram program, string path, IReadOnlyList<UprobeSite> sites, int pid = 0, bool returnProbe = false)
    {
        if (sites.Count == 0) throw new ArgumentException("uprobe_multi needs at least one site", nameof(sites));
        if (program.Spec.ExpectedAttachType != AttachType.TraceUprobeMulti)
            throw new ArgumentException($"program '{program.Spec.Name}' was not loaded for uprobe_multi");

        var offsets = new ulong[sites.Count];
        var refCtrOffsets = new ulong[sites.Count];
        var cookies = new ulong[sites.Count];
        for (var i = 0; i < sites.Count; i++)
        {
            offsets[i] = sites[i].FileOffset;
            refCtrOffsets[i] = sites[i].RefCtrOffset;
            cookies[i] = sites[i].Cookie;
        }
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pathPointer = pathBytes)
        fixed (ulong* offsetsPointer = offsets)
        fixed (ulong* refCtrPointer = refCtrOffsets)
        fixed (ulong* cookiesPointer = cookies)
        {
            var attr = new LinkCreateUprobeMultiAttr
            {
                ProgFd = (uint)program.Fd.Value,
                AttachType = (uint)AttachType.TraceUprobeMulti,
                Path = (ulong)pathPointer,
                Offsets = (ulong)offsetsPointer,
                RefCtrOffsets = (ulong)refCtrPointer,
                Cookies = (ulong)cookiesPointer,
                Count = (uint)sites.Count,
                UprobeMultiFlags = returnProbe ? ReturnProbeFlag : 0,
                Pid = (uint)pid,
            };
            var result = BpfSyscall.Invoke(BpfCommand.LinkCreate, ref attr);
            if (result < 0) throw new SyscallException("attaching uprobe_multi", (int)-result, Explain((int)-result, path, pid));
            return new UprobeMultiLink(KernelFileDescriptor.Own((int)result), sites.Count);
        }
    }

    private static string Explain(int errno, string path, int pid) => errno switch
    {
        (int)Errno.ESRCH => $"process {pid} does not exist",
        (int)Errno.EINVAL => $"{path}: an offset is outside the file, or another tracer holds a probe at the same place with a different semaphore offset (see dmesg: 'ref_ctr_offset mismatch')",
        (int)Errno.EBADF or (int)Errno.ENOENT => $"{path} is not a regular file",
        _ => path,
    };

    public void Dispose() => _fd.Dispose();
}
