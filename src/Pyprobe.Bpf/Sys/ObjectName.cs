namespace Pyprobe.Bpf.Sys;

/// <summary>Map and program names: at most 15 bytes of [A-Za-z0-9_.] plus NUL (BPF_OBJ_NAME_LEN = 16).</summary>
public static unsafe class ObjectName
{
    public static void Write(string name, byte* destination)
    {
        var written = 0;
        foreach (var c in name)
        {
            if (written == 15) break;
            destination[written++] = char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? (byte)c : (byte)'_';
        }
        destination[written] = 0;
    }
}
