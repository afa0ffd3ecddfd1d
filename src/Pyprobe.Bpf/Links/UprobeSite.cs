namespace Pyprobe.Bpf.Links;

/// <summary>
/// One place to put a uprobe: a file offset (not a virtual address), the USDT semaphore's file offset
/// (0 = none) and a cookie the program reads with bpf_get_attach_cookie.
/// </summary>
public readonly record struct UprobeSite(ulong FileOffset, ulong RefCtrOffset = 0, ulong Cookie = 0);
