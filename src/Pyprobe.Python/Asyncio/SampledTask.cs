namespace Pyprobe.Python.Asyncio;

/// <summary>
/// The task a sample was taken in, as the kernel saw it then (<see cref="Sampling.TaskSnapshot"/>): its address, its name
/// object and the name it held (null where it could not be read), and the code of its coroutine (0 where the walk met none).
/// </summary>
public readonly record struct SampledTask(ulong Task, ulong NameObject, string? Name, ulong CoroutineCode)
{
    /// <summary>
    /// Whether this is the task kept as <paramref name="task"/> with the name object <paramref name="nameObject"/> and the
    /// name <paramref name="name"/> (a name the copy could not give is taken as that one).
    /// </summary>
    public bool Is(ulong task, ulong nameObject, string name) => Task == task && NameObject == nameObject && (Name ?? name) == name;

    /// <summary>
    /// What a sample of a task that has ended since goes under: the task alone (its awaiters are not known any more), named
    /// as the sample saw it, or by its address where its name could not be read.
    /// </summary>
    public TaskChain Alone() => new([Profiling.StackFrame.TaskRoot(Name ?? $"0x{Task:x}", 0)], CoroutineCode);
}
