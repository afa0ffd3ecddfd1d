using System.Buffers.Binary;
using System.Text;
using Pyprobe.Bpf.Sys;
using Pyprobe.Bpf.Sys.Attributes;

namespace Pyprobe.Bpf.Btf;

/// <summary>
/// The BTF pyprobe gives the kernel with a program that has BPF functions: a FUNC for the program and one for its other
/// functions, which the verifier needs before it takes a callback's address (bpf_loop's; "missing btf func_info"
/// otherwise). Static linkage: the verifier checks each function where it is called from, with the caller's types, so
/// the prototypes only have to be well formed. Written once per process and loaded once (BPF_BTF_LOAD), shared by
/// every program that needs it.
/// </summary>
public static class FunctionBtf
{
    private const ushort Magic = 0xeB9F;
    private const int HeaderLength = 24;
    private const uint IntSigned = 1;

    /// <summary>Type id of the FUNC for a program's first instruction: <c>long program(void *ctx)</c>.</summary>
    public const uint ProgramFunction = 4;

    /// <summary>Type id of the FUNC for every other function: <c>long callback(long index, void *ctx)</c>.</summary>
    public const uint CallbackFunction = 6;

    private static readonly Lazy<KernelFileDescriptor> Loaded = new(Load);

    /// <summary>The loaded BTF (kept for the process's life: programs hold their own reference).</summary>
    public static KernelFileDescriptor Fd => Loaded.Value;

    /// <summary>The BTF blob: header, six types, their names.</summary>
    public static byte[] Build()
    {
        var strings = new StringTable();
        var types = new List<uint>();
        void Type(uint name, BtfKind kind, int vlen, uint sizeOrType, params uint[] extra)
        {
            types.Add(name);
            types.Add((uint)kind << 24 | (uint)vlen);
            types.Add(sizeOrType);
            types.AddRange(extra);
        }
        Type(strings.Add("long"), BtfKind.Int, 0, 8, IntSigned << 24 | 64);                              // 1
        Type(0, BtfKind.Pointer, 0, 0);                                                                    // 2: void *
        Type(0, BtfKind.FunctionPrototype, 1, 1, strings.Add("ctx"), 2);                                   // 3
        Type(strings.Add("program"), BtfKind.Function, 0, 3);                                              // 4
        Type(0, BtfKind.FunctionPrototype, 2, 1, strings.Add("index"), 1, strings.Add("ctx"), 2);          // 5
        Type(strings.Add("callback"), BtfKind.Function, 0, 5);                                             // 6

        var typeBytes = types.Count * 4;
        var stringBytes = strings.Bytes;
        var blob = new byte[HeaderLength + typeBytes + stringBytes.Length];
        var span = blob.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(span, Magic);
        span[2] = 1; // version
        span[3] = 0; // flags
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], HeaderLength);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], 0);                  // type_off
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)typeBytes);   // type_len
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], (uint)typeBytes);   // str_off
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], (uint)stringBytes.Length);
        for (var i = 0; i < types.Count; i++) BinaryPrimitives.WriteUInt32LittleEndian(span[(HeaderLength + 4 * i)..], types[i]);
        stringBytes.CopyTo(span[(HeaderLength + typeBytes)..]);
        return blob;
    }

    private static unsafe KernelFileDescriptor Load()
    {
        var blob = Build();
        var log = new byte[4096];
        fixed (byte* data = blob)
        fixed (byte* logPointer = log)
        {
            var attr = new BtfLoadAttr { Btf = (ulong)data, BtfSize = (uint)blob.Length };
            var result = BpfSyscall.Invoke(BpfCommand.BtfLoad, ref attr);
            if (result >= 0) return KernelFileDescriptor.Own((int)result);
            // Again with the log, for the kernel's own words.
            attr = new BtfLoadAttr { Btf = (ulong)data, BtfSize = (uint)blob.Length, LogBuf = (ulong)logPointer, LogSize = (uint)log.Length, LogLevel = 1 };
            var again = BpfSyscall.Invoke(BpfCommand.BtfLoad, ref attr);
            if (again >= 0) return KernelFileDescriptor.Own((int)again);
            var end = Array.IndexOf(log, (byte)0);
            throw new SyscallException("bpf(BtfLoad)", (int)-result, Encoding.UTF8.GetString(log, 0, end >= 0 ? end : log.Length).Trim());
        }
    }

    /// <summary>BTF's string section: offset 0 is the empty string.</summary>
    private sealed class StringTable
    {
        private readonly List<byte> _all = [0];

        public uint Add(string name)
        {
            var offset = (uint)_all.Count;
            _all.AddRange(Encoding.ASCII.GetBytes(name));
            _all.Add(0);
            return offset;
        }

        public byte[] Bytes => [.. _all];
    }
}
