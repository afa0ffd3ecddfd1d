using System.Buffers.Binary;
using Pyprobe.Bpf.Maps;
using Pyprobe.Python.EvalFrame;
using Pyprobe.Python.Sessions;

namespace Pyprobe.Python.Tests.Sessions;

/// <summary>
/// Maps keyed by thread grow as they are used and lose a thread's entries when the thread exits: a real thread of this
/// process is given entries, ends, and the kernel's exit program must have deleted exactly those, leaving the entries
/// of a thread that is still running.
/// </summary>
public sealed class PerThreadMapsTests
{
    [Fact]
    public void AnExitingThreadLosesItsDepthAndEveryChunkOfFramesItReached()
    {
        Requirements.EnsureRoot();
        Assert.True(PerThreadMaps.Growing, "this kernel (6.1+ with bpf_loop expected) should let probe programs use growing hashes");
        using var core = SessionCore.Create(null);
        var (depths, frames, _) = ActivationStack.CreateMaps(core, "pp_test_");
        Assert.Equal(MapType.Hash, depths.Spec.Type);
        Assert.Equal(MapSpec.NoPrealloc, frames.Spec.Flags);

        var staying = CurrentTid();
        Fill(depths, frames, staying, open: 1, deepest: 1);
        // Deepest 40: chunks 0, 1 and 2 (of 16 depths each).
        var ending = RunThreadThatExits(tid => Fill(depths, frames, tid, open: 2, deepest: 40));

        Assert.Equal([staying], ThreadIds(depths, 4));
        Assert.Equal([(long)(uint)staying], ThreadIds(frames, 8));
        Assert.NotEqual(staying, ending);
    }

    [Fact]
    public void AThreadsEntryInAMapKeyedByThreadGoesWhenItExits()
    {
        Requirements.EnsureRoot();
        using var core = SessionCore.Create(null);
        var stacks = PerThreadMaps.Create(core, "pp_test_stacks", 4, 64, 16);
        PerThreadMaps.ClearOnExit(core, "pp_test_exit", PerThreadMaps.DeleteThreadEntry(stacks.Fd.Value));
        var staying = CurrentTid();
        stacks.Update(Key(staying), new byte[64]);
        RunThreadThatExits(tid => stacks.Update(Key(tid), new byte[64]));
        Assert.Equal([staying], ThreadIds(stacks, 4));
    }

    /// <summary>Depth (open, deepest) for the thread and every chunk of frames holding depths 1..deepest.</summary>
    private static void Fill(BpfMap depths, BpfMap frames, int tid, uint open, uint deepest)
    {
        var depth = new byte[ActivationStack.DepthValueSize];
        BinaryPrimitives.WriteUInt32LittleEndian(depth, open);
        BinaryPrimitives.WriteUInt32LittleEndian(depth.AsSpan(4), deepest);
        depths.Update(Key(tid), depth);
        for (var chunk = 0u; chunk <= deepest / ActivationStack.ChunkFrames; chunk++)
        {
            var key = new byte[8];
            BinaryPrimitives.WriteInt32LittleEndian(key, tid);
            BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(4), chunk);
            var value = new byte[ActivationStack.ChunkValueSize];
            BinaryPrimitives.WriteUInt64LittleEndian(value, 0x7f00_0000_0000UL + chunk);
            frames.Update(key, value);
        }
    }

    /// <summary>Runs <paramref name="fill"/> with a new thread's id while it lives, lets it end and waits until the kernel has seen it go.</summary>
    private static int RunThreadThatExits(Action<int> fill)
    {
        var tid = 0;
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            tid = CurrentTid();
            started.Set();
            release.Wait();
        });
        thread.Start();
        started.Wait();
        fill(tid);
        release.Set();
        thread.Join();
        // Join returns when the managed thread is done; the kernel task may end a moment later.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Directory.Exists($"/proc/self/task/{tid}") && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.False(Directory.Exists($"/proc/self/task/{tid}"), $"thread {tid} did not end");
        return tid;
    }

    private static int CurrentTid() => int.Parse(Path.GetFileName(new FileInfo("/proc/thread-self").LinkTarget!));

    private static byte[] Key(int tid) => BitConverter.GetBytes(tid);

    /// <summary>Every key of the map, as a number (4- or 8-byte keys), sorted.</summary>
    private static List<long> ThreadIds(BpfMap map, int keySize)
    {
        var keys = new List<long>();
        var key = new byte[keySize];
        var next = new byte[keySize];
        var first = true;
        while (map.TryGetNextKey(first ? ReadOnlySpan<byte>.Empty : key, next))
        {
            keys.Add(keySize == 4 ? BinaryPrimitives.ReadInt32LittleEndian(next) : BinaryPrimitives.ReadInt64LittleEndian(next));
            next.CopyTo(key, 0);
            first = false;
        }
        keys.Sort();
        return keys;
    }
}
