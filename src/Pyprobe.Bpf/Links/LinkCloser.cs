using Pyprobe.Bpf.Launch;

namespace Pyprobe.Bpf.Links;

/// <summary>
/// Closes links in the order given, except that uprobe links (and others that may, <see cref="IClosesAlongside"/>) next
/// to each other close together. Closing a uprobe link waits in the kernel for an RCU tasks-trace grace period
/// (uprobe_unregister_sync: 15-20 ms on the machines pyprobe is measured on), and closes that overlap wait for the same
/// one: a session with an entry, a return and a code-object probe detached in about one grace period rather than three.
/// Links of other kinds (a 3.11 gate raised) keep their place: what is closed before or after them still is.
/// </summary>
public static class LinkCloser
{
    public static void CloseInOrder(IReadOnlyList<IDisposable> links)
    {
        for (var first = 0; first < links.Count;)
        {
            var end = first + 1;
            if (links[first] is IClosesAlongside)
                while (end < links.Count && links[end] is IClosesAlongside) end++;
            CloseTogether(links, first, end);
            first = end;
        }
    }

    /// <summary>Closes links [<paramref name="first"/>, <paramref name="end"/>): the first on this thread, each other on a thread of its own, and returns when all are closed.</summary>
    private static void CloseTogether(IReadOnlyList<IDisposable> links, int first, int end)
    {
        if (end - first == 1)
        {
            links[first].Dispose();
            return;
        }
        using var closed = new CountdownEvent(end - first - 1);
        for (var i = first + 1; i < end; i++)
        {
            var link = links[i];
            UnwaitedThread.Start(() =>
            {
                try
                {
                    link.Dispose();
                }
                finally
                {
                    closed.Signal();
                }
            }, "pyprobe detach");
        }
        links[first].Dispose();
        closed.Wait();
    }
}
