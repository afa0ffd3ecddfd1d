namespace Pyprobe.Bpf.Asm;

/// <summary>Kernel-style names (<c>bpf_ringbuf_reserve</c>) for helper ids, as the verifier log prints them.</summary>
public static class HelperFunctionNames
{
    /// <summary>Returns the kernel name of a known helper id, or null. A switch, not reflection, so it is AOT-safe.</summary>
    public static string? KernelName(int helperId) => (HelperFunction)helperId switch
    {
        HelperFunction.MapLookupElem => "bpf_map_lookup_elem",
        HelperFunction.MapUpdateElem => "bpf_map_update_elem",
        HelperFunction.MapDeleteElem => "bpf_map_delete_elem",
        HelperFunction.KtimeGetNs => "bpf_ktime_get_ns",
        HelperFunction.GetSmpProcessorId => "bpf_get_smp_processor_id",
        HelperFunction.TracePrintk => "bpf_trace_printk",
        HelperFunction.GetCurrentPidTgid => "bpf_get_current_pid_tgid",
        HelperFunction.GetCurrentUidGid => "bpf_get_current_uid_gid",
        HelperFunction.GetCurrentComm => "bpf_get_current_comm",
        HelperFunction.PerfEventOutput => "bpf_perf_event_output",
        HelperFunction.GetCurrentTask => "bpf_get_current_task",
        HelperFunction.GetStack => "bpf_get_stack",
        HelperFunction.SendSignal => "bpf_send_signal",
        HelperFunction.ProbeReadUser => "bpf_probe_read_user",
        HelperFunction.ProbeReadKernel => "bpf_probe_read_kernel",
        HelperFunction.ProbeReadUserStr => "bpf_probe_read_user_str",
        HelperFunction.GetNsCurrentPidTgid => "bpf_get_ns_current_pid_tgid",
        HelperFunction.GetCurrentTaskBtf => "bpf_get_current_task_btf",
        HelperFunction.RingbufOutput => "bpf_ringbuf_output",
        HelperFunction.RingbufReserve => "bpf_ringbuf_reserve",
        HelperFunction.RingbufSubmit => "bpf_ringbuf_submit",
        HelperFunction.RingbufDiscard => "bpf_ringbuf_discard",
        HelperFunction.RingbufQuery => "bpf_ringbuf_query",
        HelperFunction.GetFuncIp => "bpf_get_func_ip",
        HelperFunction.GetAttachCookie => "bpf_get_attach_cookie",
        HelperFunction.TaskPtRegs => "bpf_task_pt_regs",
        HelperFunction.Loop => "bpf_loop",
        _ => null,
    };

    public static string? KernelName(this HelperFunction helper) => KernelName((int)helper);
}
