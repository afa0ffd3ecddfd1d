using System.Diagnostics;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Usdt.Unwind;

/// <summary>
/// The executable mappings of one process, from /proc/PID/maps: each file-backed one as a <see cref="NativeModule"/>
/// (files opened through /proc/PID/root, so a container's libraries are its own), the kernel's [vdso] read from the
/// process's memory. A process loads libraries later (dlopen, Python extension modules): an address found nowhere
/// re-reads the maps, at most every <see cref="RefreshInterval"/>, so a stream of samples from unmapped (JIT) code
/// does not re-read them for each.
/// </summary>
public sealed class NativeModules : INativeCodeMap
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMilliseconds(100);

    private readonly Lock _refreshing = new();
    private Snapshot _snapshot;
    private long _readAt;

    /// <summary>One reading of the maps: modules and all executable ranges, each sorted by start.</summary>
    private sealed record Snapshot(NativeModule[] Modules, (ulong Start, ulong End)[] Executable);

    private NativeModules(int pid)
    {
        Pid = pid;
        _snapshot = Read(pid, null);
        _readAt = Stopwatch.GetTimestamp();
    }

    public int Pid { get; }

    /// <summary>The modules as last read, in address order.</summary>
    public IReadOnlyList<NativeModule> Modules => _snapshot.Modules;

    /// <summary>Reads the maps of <paramref name="pid"/> (throws <see cref="ProcessNotFoundException"/> when it is gone).</summary>
    public static NativeModules ForProcess(int pid) => new(pid);

    public bool TryLocate(ulong address, out NativeModule module, out ulong vaddr)
    {
        var found = Find(_snapshot.Modules, address);
        if (found is null && RefreshIfDue()) found = Find(_snapshot.Modules, address);
        if (found is not null)
        {
            module = found;
            vaddr = address - found.Bias;
            return true;
        }
        module = null!;
        vaddr = 0;
        return false;
    }

    public bool IsExecutable(ulong address)
    {
        if (InRanges(_snapshot.Executable, address)) return true;
        return RefreshIfDue() && InRanges(_snapshot.Executable, address);
    }

    /// <summary>Re-reads the maps now; modules of files already open keep their images (and parsed tables).</summary>
    public void Refresh()
    {
        lock (_refreshing)
        {
            _snapshot = Read(Pid, _snapshot);
            _readAt = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Re-reads the maps unless that was done less than <see cref="RefreshInterval"/> ago; whether it did.</summary>
    private bool RefreshIfDue()
    {
        if (Stopwatch.GetElapsedTime(Volatile.Read(ref _readAt)) < RefreshInterval) return false;
        try
        {
            Refresh();
            return true;
        }
        catch (Exception e) when (e is ProcessNotFoundException or UsdtException)
        {
            _readAt = Stopwatch.GetTimestamp(); // the process ended: what was read last stays, for its last samples
            return false;
        }
    }

    private static NativeModule? Find(NativeModule[] modules, ulong address)
    {
        int lo = 0, hi = modules.Length - 1;
        while (lo <= hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            var module = modules[mid];
            if (address < module.Start) hi = mid - 1;
            else if (address >= module.End) lo = mid + 1;
            else return module;
        }
        return null;
    }

    private static bool InRanges((ulong Start, ulong End)[] ranges, ulong address)
    {
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            if (address < ranges[mid].Start) hi = mid - 1;
            else if (address >= ranges[mid].End) lo = mid + 1;
            else return true;
        }
        return false;
    }

    private static Snapshot Read(int pid, Snapshot? previous)
    {
        var maps = ProcMaps.Read(pid);
        var files = ProcessNamespace.For(pid);
        var known = previous?.Modules.ToDictionary(m => (m.Start, m.End, m.Path)) ?? [];
        var modules = new List<NativeModule>();
        var executable = new List<(ulong, ulong)>();
        foreach (var mapping in maps)
        {
            if (!mapping.IsExecutable) continue;
            executable.Add((mapping.Start, mapping.End));
            if (mapping.Path is not { } path) continue;
            if (known.TryGetValue((mapping.Start, mapping.End, path), out var same)) { modules.Add(same); continue; }
            if (Open(pid, files, mapping) is { } module) modules.Add(module);
        }
        modules.Sort((a, b) => a.Start.CompareTo(b.Start));
        executable.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return new Snapshot([.. modules], [.. executable]);
    }

    /// <summary>The module of one executable mapping, or null when its file cannot be opened as an x86-64 ELF.</summary>
    private static NativeModule? Open(int pid, ProcessNamespace files, ProcMapsEntry mapping)
    {
        var path = mapping.Path!;
        try
        {
            ElfImage elf;
            if (path == "[vdso]")
            {
                if (ReadMemory(pid, mapping.Start, mapping.End) is not { } image) return null;
                elf = ElfImage.OpenInMemory(path, image, image.Length);
            }
            else if (path.StartsWith('['))
            {
                return null; // [vsyscall] and the like: no ELF behind them
            }
            else
            {
                // A file replaced or removed since it was mapped is still reachable through map_files.
                elf = ElfImage.Open(mapping.Deleted ? $"/proc/{pid}/map_files/{mapping.Start:x}-{mapping.End:x}" : files.OpenPath(files.InsideRoot(path)));
            }
            return NativeModule.BiasOf(elf, mapping.Start, mapping.Offset) is { } bias
                ? new NativeModule(mapping.Start, mapping.End, files.InsideRoot(path), bias, elf)
                : null;
        }
        catch (UsdtException)
        {
            return null;
        }
    }

    /// <summary>The bytes of [start, end) in the process (the vDSO is no file); null if they cannot be read.</summary>
    private static byte[]? ReadMemory(int pid, ulong start, ulong end)
    {
        if (end <= start || end - start > 1 << 20) return null;
        try
        {
            using var memory = new FileStream($"/proc/{pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            memory.Position = (long)start;
            var bytes = new byte[(int)(end - start)];
            memory.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}
