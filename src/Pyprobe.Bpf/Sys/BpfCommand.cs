namespace Pyprobe.Bpf.Sys;

/// <summary>enum bpf_cmd (include/uapi/linux/bpf.h).</summary>
public enum BpfCommand
{
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ProgLoad = 5,
    ObjGetInfoByFd = 15,
    RawTracepointOpen = 17,
    BtfLoad = 18,
    LinkCreate = 28,
    LinkDetach = 34,
}
