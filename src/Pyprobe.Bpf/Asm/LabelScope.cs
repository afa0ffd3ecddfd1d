namespace Pyprobe.Bpf.Asm;

/// <summary>
/// Label names private to one emission of a code fragment (<see cref="InstructionBuilder.Scope"/>): <c>scope["done"]</c>
/// is the same name within the scope and a different one in every other scope.
/// </summary>
public sealed class LabelScope
{
    private readonly string _prefix;

    internal LabelScope(string prefix) => _prefix = prefix;

    public string this[string name] => $"{_prefix}.{name}";

    public override string ToString() => _prefix;
}
