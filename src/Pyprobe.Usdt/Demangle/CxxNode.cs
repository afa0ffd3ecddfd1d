using System.Text;

namespace Pyprobe.Usdt.Demangle;

/// <summary>
/// The text a demangled name is written into. It tracks the last character because GNU's output (what
/// <c>c++filt</c> prints, the form users know) spaces template brackets that would otherwise run together
/// (<c>operator&lt; &lt;int&gt;</c>, <c>std::allocator&lt;int&gt; &gt;</c>), and the element of a parameter pack being
/// expanded.
/// </summary>
internal sealed class CxxWriter
{
    private readonly StringBuilder _text = new();
    private char _last;

    /// <summary>The element of a pack a <see cref="PackExpansionNode"/> is writing, or -1 for the whole pack.</summary>
    public int PackIndex { get; set; } = -1;

    /// <summary>
    /// The template arguments of the function being written, what its template parameters stand for: a parameter
    /// reached through a substitution made inside another function's local name takes this function's argument, as GNU's.
    /// </summary>
    public IReadOnlyList<CxxNode>? TemplateScope { get; set; }

    /// <summary>The size of the first pack a <see cref="PackExpansionNode"/> meets, found by writing it once.</summary>
    public int? PackSizeSeen { get; set; }

    public int Length => _text.Length;

    /// <summary>
    /// The last character added. Not the text's last character after <see cref="DropTo"/>: GNU's printer keeps the
    /// last character it appended when it takes back the ", " before an empty pack, so <c>A&lt;B&lt;C&gt;, [empty]&gt;</c>
    /// closes as <c>A&lt;B&lt;C&gt;&gt;</c>, unspaced; c++filt's text is the reference, quirks included.
    /// </summary>
    public char Last => _last;

    public CxxWriter Add(string text)
    {
        if (text.Length == 0) return this;
        _text.Append(text);
        _last = text[^1];
        return this;
    }

    public CxxWriter Add(char c)
    {
        _text.Append(c);
        _last = c;
        return this;
    }

    /// <summary>Takes back text written since <paramref name="length"/>, keeping <see cref="Last"/> as it was.</summary>
    public void DropTo(int length) => _text.Length = length;

    /// <summary>Where the text is now, to go back to with <see cref="Restore"/>.</summary>
    public (int Length, char Last) Save() => (_text.Length, _last);

    /// <summary>Takes back everything since <paramref name="mark"/>, <see cref="Last"/> included.</summary>
    public void Restore((int Length, char Last) mark) => (_text.Length, _last) = mark;

    public override string ToString() => _text.ToString();
}

/// <summary>
/// A node of a demangled name. Types are written in two halves around where a declarator would go: a pointer to a
/// function is the return type, then "(*)", then the parameters (<c>void (*)(int)</c>), so each node writes a left part and
/// a right part.
/// </summary>
internal abstract class CxxNode
{
    /// <summary>An array or function type: what a pointer or reference to it must parenthesise.</summary>
    public virtual bool IsArrayOrFunction => false;

    /// <summary>Writes part of itself after a declarator: a function or array, or a pointer to one.</summary>
    public virtual bool HasRight => IsArrayOrFunction;

    public abstract void WriteLeft(CxxWriter output);

    public virtual void WriteRight(CxxWriter output)
    {
    }

    public void Write(CxxWriter output)
    {
        WriteLeft(output);
        WriteRight(output);
    }

    public override string ToString()
    {
        var output = new CxxWriter();
        Write(output);
        return output.ToString();
    }

    /// <summary>Writes <paramref name="items"/> separated by ", ", taking the separator back before an item that writes nothing (an empty pack), as GNU does.</summary>
    public static void WriteList(CxxWriter output, IReadOnlyList<CxxNode> items)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (i == 0)
            {
                items[i].Write(output);
                continue;
            }
            output.Add(", ");
            var afterSeparator = output.Length;
            items[i].Write(output);
            if (output.Length == afterSeparator) output.DropTo(afterSeparator - 2);
        }
    }
}

/// <summary>Plain text: an identifier, a builtin type, a literal, "std".</summary>
internal sealed class TextNode(string text) : CxxNode
{
    public string Text { get; } = text;

    public override void WriteLeft(CxxWriter output) => output.Add(Text);
}

/// <summary><c>qualifier::name</c>.</summary>
internal sealed class NestedNode(CxxNode qualifier, CxxNode name) : CxxNode
{
    public CxxNode Qualifier { get; } = qualifier;
    public CxxNode Name { get; } = name;

    public override void WriteLeft(CxxWriter output)
    {
        Qualifier.Write(output);
        output.Add("::");
        Name.Write(output);
    }
}

/// <summary><c>name&lt;args&gt;</c>, spaced as GNU spaces it.</summary>
internal sealed class TemplateNode(CxxNode name, IReadOnlyList<CxxNode> arguments) : CxxNode
{
    public CxxNode Name { get; } = name;
    public IReadOnlyList<CxxNode> Arguments { get; } = arguments;

    public override void WriteLeft(CxxWriter output)
    {
        Name.Write(output);
        if (output.Last == '<') output.Add(' ');
        output.Add('<');
        WriteList(output, Arguments);
        if (output.Last == '>') output.Add(' ');
        output.Add('>');
    }
}

/// <summary><c>name[abi:tag]</c>.</summary>
internal sealed class AbiTagNode(CxxNode name, string tag) : CxxNode
{
    public CxxNode Name { get; } = name;

    public override void WriteLeft(CxxWriter output)
    {
        Name.Write(output);
        output.Add("[abi:").Add(tag).Add(']');
    }
}

/// <summary>A constructor or destructor: the class's own name, without its template arguments or tags.</summary>
internal sealed class StructorNode(CxxNode className, bool destructor) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        if (destructor) output.Add('~');
        BaseName(className).Write(output);
    }

    private static CxxNode BaseName(CxxNode node) => node switch
    {
        NestedNode nested => BaseName(nested.Name),
        TemplateNode template => BaseName(template.Name),
        AbiTagNode tagged => BaseName(tagged.Name),
        SubstitutionNode abbreviation when abbreviation.ClassName is not null => new TextNode(abbreviation.ClassName),
        _ => node,
    };
}

/// <summary>One of the standard abbreviations (<c>Ss</c>, <c>Sa</c>...), written in full as c++filt does.</summary>
internal sealed class SubstitutionNode(string expansion, string? className) : CxxNode
{
    /// <summary>The name its constructors take ("basic_string" for <c>Ss</c>), or null to use the expansion's last part.</summary>
    public string? ClassName { get; } = className;

    public override void WriteLeft(CxxWriter output) => output.Add(expansion);
}

/// <summary>A cv-qualified type: <c>int const volatile</c>; on a function type the qualifiers follow its parameters.</summary>
internal sealed class QualifiedNode(CxxNode inner, string qualifiers) : CxxNode
{
    public CxxNode Inner { get; } = inner;
    public string Qualifiers { get; } = qualifiers;

    public override bool IsArrayOrFunction => Inner.IsArrayOrFunction;

    public override bool HasRight => Inner.HasRight;

    // A function's qualifiers follow its parameters; an array's belong to its element.
    private bool OnFunction => Inner.IsArrayOrFunction && !IsArray(Inner);

    private static bool IsArray(CxxNode node) => node switch
    {
        ArrayNode => true,
        TemplateParameterNode parameter => IsArray(parameter.Argument),
        _ => false,
    };

    public override void WriteLeft(CxxWriter output)
    {
        Inner.WriteLeft(output);
        if (!OnFunction) output.Add(NewQualifiers(output));
    }

    public override void WriteRight(CxxWriter output)
    {
        Inner.WriteRight(output);
        if (OnFunction) output.Add(NewQualifiers(output));
    }

    // const on a template parameter that is already const adds nothing (RKT_ with T = int const is int const&).
    private string NewQualifiers(CxxWriter output)
    {
        if (TemplateParameterNode.Resolve(Inner, output) is not QualifiedNode { } already || ReferenceEquals(already, this)) return Qualifiers;
        var result = Qualifiers;
        foreach (var word in already.Qualifiers.Split(' ', StringSplitOptions.RemoveEmptyEntries)) result = result.Replace(" " + word, "");
        return result;
    }
}

/// <summary><c>T*</c>, <c>T&amp;</c>, <c>T&amp;&amp;</c>: around a function or array, <c>void (*)(int)</c>, <c>int (&amp;) [3]</c>.</summary>
internal sealed class PointerNode(CxxNode pointee, string symbol) : CxxNode
{
    public CxxNode Pointee { get; } = pointee;
    public string Symbol { get; } = symbol;

    public override bool HasRight => Pointee.IsArrayOrFunction;

    /// <summary>
    /// A reference to a reference collapses (through a template parameter or a pack element, so only known while
    /// writing): &amp; wins over &amp;&amp;.
    /// </summary>
    private (CxxNode Pointee, string Symbol) Collapsed(CxxWriter output)
    {
        if (Symbol == "*") return (Pointee, Symbol);
        var inner = TemplateParameterNode.Resolve(Pointee, output);
        if (inner is not PointerNode { Symbol: not "*" } reference) return (Pointee, Symbol);
        var (innerPointee, innerSymbol) = reference.Collapsed(output);
        return (innerPointee, Symbol == "&" || innerSymbol == "&" ? "&" : "&&");
    }

    public override void WriteLeft(CxxWriter output)
    {
        var (pointee, symbol) = Collapsed(output);
        pointee.WriteLeft(output);
        if (pointee.IsArrayOrFunction)
        {
            if (output.Last != ' ' && output.Last != '(') output.Add(' ');
            output.Add('(');
        }
        output.Add(symbol);
    }

    public override void WriteRight(CxxWriter output)
    {
        var (pointee, _) = Collapsed(output);
        if (pointee.IsArrayOrFunction) output.Add(')');
        pointee.WriteRight(output);
    }
}

/// <summary><c>int A::*</c>, <c>void (A::*)(int)</c>.</summary>
internal sealed class MemberPointerNode(CxxNode owner, CxxNode member) : CxxNode
{
    public override bool HasRight => member.IsArrayOrFunction;

    public override void WriteLeft(CxxWriter output)
    {
        member.WriteLeft(output);
        output.Add(member.IsArrayOrFunction ? "(" : " ");
        owner.Write(output);
        output.Add("::*");
    }

    public override void WriteRight(CxxWriter output)
    {
        if (member.IsArrayOrFunction) output.Add(')');
        member.WriteRight(output);
    }
}

/// <summary><c>int [3]</c>: the element, then the bounds on the right.</summary>
internal sealed class ArrayNode(CxxNode element, string dimension) : CxxNode
{
    public override bool IsArrayOrFunction => true;

    public override void WriteLeft(CxxWriter output) => element.WriteLeft(output);

    public override void WriteRight(CxxWriter output)
    {
        if (output.Last != ']') output.Add(' ');
        output.Add('[').Add(dimension).Add(']');
        element.WriteRight(output);
    }
}

/// <summary>A function type: <c>void (int)</c>, its qualifiers (<c>const</c>, <c>&amp;</c>, <c>noexcept</c>) after.</summary>
internal sealed class FunctionTypeNode(CxxNode returnType, IReadOnlyList<CxxNode> parameters, string suffix) : CxxNode
{
    public override bool IsArrayOrFunction => true;

    public override void WriteLeft(CxxWriter output)
    {
        returnType.WriteLeft(output);
        output.Add(' ');
    }

    public override void WriteRight(CxxWriter output)
    {
        output.Add('(');
        WriteList(output, parameters);
        output.Add(')');
        returnType.WriteRight(output);
        output.Add(suffix);
    }
}

/// <summary>A vector type (<c>Dv</c>): <c>int __vector(4)</c>.</summary>
internal sealed class VectorNode(CxxNode element, string dimension) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        element.Write(output);
        output.Add(" __vector(").Add(dimension).Add(')');
    }
}

/// <summary>A function: <c>[return type ]name(parameters)[ const][ &amp;]</c>, or its name alone when parameters are not wanted.</summary>
internal sealed class EncodingNode(
    CxxNode name, CxxNode? returnType, IReadOnlyList<CxxNode> parameters, string qualifiers, IReadOnlyList<CxxNode>? templateArguments) : CxxNode
{
    public CxxNode Name { get; } = name;

    public void WriteWithoutReturnType(CxxWriter output)
    {
        var outer = EnterScope(output);
        Name.Write(output);
        output.Add('(');
        WriteList(output, parameters);
        output.Add(')').Add(qualifiers);
        output.TemplateScope = outer;
    }

    public void WriteName(CxxWriter output)
    {
        var outer = EnterScope(output);
        Name.Write(output);
        output.TemplateScope = outer;
    }

    private IReadOnlyList<CxxNode>? EnterScope(CxxWriter output)
    {
        var outer = output.TemplateScope;
        if (templateArguments is not null) output.TemplateScope = templateArguments;
        return outer;
    }

    public override void WriteLeft(CxxWriter output)
    {
        var outer = EnterScope(output);
        if (returnType is not null)
        {
            returnType.WriteLeft(output);
            if (!returnType.HasRight) output.Add(' ');
        }
        Name.Write(output);
        output.TemplateScope = outer;
    }

    public override void WriteRight(CxxWriter output)
    {
        var outer = EnterScope(output);
        output.Add('(');
        WriteList(output, parameters);
        output.Add(')');
        returnType?.WriteRight(output);
        output.Add(qualifiers);
        output.TemplateScope = outer;
    }
}

/// <summary>Text before a name: "vtable for ", "non-virtual thunk to "...</summary>
internal sealed class SpecialNode(string prefix, CxxNode target, string suffix = "") : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        output.Add(prefix);
        target.Write(output);
        output.Add(suffix);
    }
}

/// <summary>A name local to a function: <c>foo()::x</c>, the function written without its return type.</summary>
internal sealed class LocalNameNode(CxxNode function, CxxNode entity) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        if (function is EncodingNode encoding) encoding.WriteWithoutReturnType(output);
        else function.Write(output);
        output.Add("::");
        entity.Write(output);
    }
}

/// <summary>A closure type: <c>{lambda(int)#1}</c>.</summary>
internal sealed class LambdaNode(IReadOnlyList<CxxNode> parameters, int number) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        output.Add("{lambda(");
        WriteList(output, parameters);
        output.Add(")#").Add(number.ToString(System.Globalization.CultureInfo.InvariantCulture)).Add('}');
    }
}

/// <summary>
/// A template parameter, written as the argument it stands for; a parameter pack is written whole, or one element at a
/// time inside a <see cref="PackExpansionNode"/>.
/// </summary>
internal sealed class TemplateParameterNode(int index, CxxNode argument) : CxxNode
{
    /// <summary>What it stood for where it was read; <see cref="CxxWriter.TemplateScope"/> decides when written.</summary>
    public CxxNode Argument { get; } = argument;

    private CxxNode Current(CxxWriter output) =>
        output.TemplateScope is { } scope && index < scope.Count ? scope[index] : Argument;

    public override bool IsArrayOrFunction => Argument is not PackNode && Argument.IsArrayOrFunction;

    public override bool HasRight => Argument is not PackNode && Argument.HasRight;

    /// <summary>What <paramref name="node"/> stands for here: through template parameters, to the pack element being written.</summary>
    public static CxxNode Resolve(CxxNode node, CxxWriter output)
    {
        while (node is TemplateParameterNode parameter)
        {
            node = parameter.Current(output);
            if (node is PackNode pack)
            {
                output.PackSizeSeen ??= pack.Elements.Count;
                if (output.PackIndex < 0 || output.PackIndex >= pack.Elements.Count) return node;
                node = pack.Elements[output.PackIndex];
            }
        }
        return node;
    }

    public override void WriteLeft(CxxWriter output)
    {
        var argument = Current(output);
        if (argument is PackNode pack)
        {
            output.PackSizeSeen ??= pack.Elements.Count;
            if (output.PackIndex < 0) pack.Write(output);
            else if (output.PackIndex < pack.Elements.Count) pack.Elements[output.PackIndex].WriteLeft(output);
            return;
        }
        argument.WriteLeft(output);
    }

    public override void WriteRight(CxxWriter output)
    {
        var argument = Current(output);
        if (argument is PackNode pack)
        {
            if (output.PackIndex >= 0 && output.PackIndex < pack.Elements.Count) pack.Elements[output.PackIndex].WriteRight(output);
            return;
        }
        argument.WriteRight(output);
    }
}

/// <summary>A template argument pack (<c>J...E</c>), written whole: <c>int, char</c>.</summary>
internal sealed class PackNode(IReadOnlyList<CxxNode> elements) : CxxNode
{
    public IReadOnlyList<CxxNode> Elements { get; } = elements;

    public override void WriteLeft(CxxWriter output) => WriteList(output, Elements);
}

/// <summary>A pack expansion (<c>Dp</c>): its pattern once per element of the pack inside it, comma-separated.</summary>
internal sealed class PackExpansionNode(CxxNode pattern) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        // Write the pattern once to learn the pack's size, then again per element.
        var start = output.Save();
        var (outerIndex, outerSeen) = (output.PackIndex, output.PackSizeSeen);
        output.PackSizeSeen = null;
        output.PackIndex = 0;
        pattern.Write(output);
        var size = output.PackSizeSeen;
        output.Restore(start);
        if (size is null)
        {
            pattern.Write(output);
            output.Add("...");
        }
        else
        {
            for (var i = 0; i < size; i++)
            {
                if (i > 0) output.Add(", ");
                output.PackIndex = i;
                pattern.Write(output);
            }
        }
        (output.PackIndex, output.PackSizeSeen) = (outerIndex, outerSeen);
    }
}

/// <summary>A conversion operator: <c>operator int</c>.</summary>
internal sealed class ConversionNode(CxxNode type) : CxxNode
{
    public override void WriteLeft(CxxWriter output)
    {
        output.Add("operator ");
        type.Write(output);
    }
}
