namespace Pyprobe.Python.Sessions;

/// <summary>
/// What a start made of several kernel objects owns so far (maps, programs, links, readers), in the order it got
/// them. A failure halfway disposes the list: newest first, so a link goes before the program it runs. A started
/// object keeps the list and releases it in the steps its own shutdown needs (<see cref="Release"/>).
/// </summary>
public sealed class OwnedResources : IDisposable
{
    private readonly List<IDisposable> _items = [];

    /// <summary>Takes <paramref name="item"/> into the list and returns it.</summary>
    public T Add<T>(T item) where T : IDisposable
    {
        _items.Add(item);
        return item;
    }

    /// <summary>Disposes, newest first, the items <paramref name="which"/> selects, and forgets them.</summary>
    public void Release(Func<IDisposable, bool> which)
    {
        for (var i = _items.Count - 1; i >= 0; i--)
        {
            if (!which(_items[i])) continue;
            var item = _items[i];
            _items.RemoveAt(i);
            item.Dispose();
        }
    }

    public void Dispose() => Release(_ => true);
}
