namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Kernel helper ids passed in the immediate of <c>call</c>. Values are from <c>___BPF_FUNC_MAPPER</c> in the UAPI
/// <c>bpf.h</c> (see notes/kernel-bpf.md §4.7); they are ABI and never change.
/// </summary>
/// <remarks>
/// Several helpers are GPL-only (TracePrintk, PerfEventOutput, ProbeRead*, GetFuncIp): a program using them must be
/// loaded with a GPL-compatible license string such as "GPL" or "Dual MIT/GPL".
/// </remarks>
public enum HelperFunction
{
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    KtimeGetNs = 5,
    GetSmpProcessorId = 8,
    TracePrintk = 6,
    TailCall = 12,
    GetCurrentPidTgid = 14,
    GetCurrentUidGid = 15,
    GetCurrentComm = 16,
    PerfEventOutput = 25,
    GetCurrentTask = 35,
    GetStack = 67,
    SendSignal = 109,
    ProbeReadUser = 112,
    ProbeReadKernel = 113,
    ProbeReadUserStr = 114,
    GetNsCurrentPidTgid = 120,
    GetCurrentTaskBtf = 158,
    RingbufOutput = 130,
    RingbufReserve = 131,
    RingbufSubmit = 132,
    RingbufDiscard = 133,
    RingbufQuery = 134,
    GetFuncIp = 173,
    GetAttachCookie = 174,
    TaskPtRegs = 175,
    Loop = 181,
}
