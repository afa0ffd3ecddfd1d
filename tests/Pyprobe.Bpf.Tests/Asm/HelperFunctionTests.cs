using Pyprobe.Bpf.Asm;

namespace Pyprobe.Bpf.Tests.Asm;

/// <summary>Helper ids are kernel ABI: pin each one against notes/kernel-bpf.md §4.7.</summary>
public sealed class HelperFunctionTests
{
    [Theory]
    [InlineData(HelperFunction.MapLookupElem, 1, "bpf_map_lookup_elem")]
    [InlineData(HelperFunction.MapUpdateElem, 2, "bpf_map_update_elem")]
    [InlineData(HelperFunction.MapDeleteElem, 3, "bpf_map_delete_elem")]
    [InlineData(HelperFunction.KtimeGetNs, 5, "bpf_ktime_get_ns")]
    [InlineData(HelperFunction.TracePrintk, 6, "bpf_trace_printk")]
    [InlineData(HelperFunction.GetCurrentPidTgid, 14, "bpf_get_current_pid_tgid")]
    [InlineData(HelperFunction.GetCurrentUidGid, 15, "bpf_get_current_uid_gid")]
    [InlineData(HelperFunction.GetCurrentComm, 16, "bpf_get_current_comm")]
    [InlineData(HelperFunction.PerfEventOutput, 25, "bpf_perf_event_output")]
    [InlineData(HelperFunction.GetCurrentTask, 35, "bpf_get_current_task")]
    [InlineData(HelperFunction.ProbeReadUser, 112, "bpf_probe_read_user")]
    [InlineData(HelperFunction.ProbeReadKernel, 113, "bpf_probe_read_kernel")]
    [InlineData(HelperFunction.ProbeReadUserStr, 114, "bpf_probe_read_user_str")]
    [InlineData(HelperFunction.GetNsCurrentPidTgid, 120, "bpf_get_ns_current_pid_tgid")]
    [InlineData(HelperFunction.RingbufOutput, 130, "bpf_ringbuf_output")]
    [InlineData(HelperFunction.RingbufReserve, 131, "bpf_ringbuf_reserve")]
    [InlineData(HelperFunction.RingbufSubmit, 132, "bpf_ringbuf_submit")]
    [InlineData(HelperFunction.RingbufDiscard, 133, "bpf_ringbuf_discard")]
    [InlineData(HelperFunction.RingbufQuery, 134, "bpf_ringbuf_query")]
    [InlineData(HelperFunction.GetFuncIp, 173, "bpf_get_func_ip")]
    [InlineData(HelperFunction.GetAttachCookie, 174, "bpf_get_attach_cookie")]
    [InlineData(HelperFunction.Loop, 181, "bpf_loop")]
    public void IdsAndKernelNames(HelperFunction helper, int id, string kernelName)
    {
        Assert.Equal(id, (int)helper);
        Assert.Equal(kernelName, helper.KernelName());
        Assert.Equal(kernelName, HelperFunctionNames.KernelName(id));
    }

    [Fact]
    public void UnknownIdHasNoName() => Assert.Null(HelperFunctionNames.KernelName(99999));
}
