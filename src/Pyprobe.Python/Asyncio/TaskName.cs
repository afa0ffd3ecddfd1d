using System.Numerics;
using Pyprobe.Python.Objects;

namespace Pyprobe.Python.Asyncio;

/// <summary>A task's name as <c>Task.get_name()</c> gives it: its str, or (3.13+, until asked for) the int N of "Task-N".</summary>
public static class TaskName
{
    /// <summary>The name held by the object at <paramref name="name"/>, or null where it is neither a str nor an int.</summary>
    public static string? Of(ObjectReader objects, ulong name)
    {
        if (objects.IsInstance(name, "str")) return objects.Str(name);
        if (objects.IsInstance(name, "int") && objects.Int(name, maxDigits: 3) is BigInteger n) return $"Task-{n}";
        return null;
    }
}
