using System.Globalization;

namespace Pyprobe.Usdt.Demangle;

/// <summary>
/// Reads an Itanium C++ ABI mangled name (what gcc and clang emit on Linux; the grammar is the ABI document's
/// "Mangling" chapter) into a tree of <see cref="CxxNode"/>s. It covers what shows up in the symbol tables of compiled
/// code (nested and template names, substitutions, packs, lambdas, local names, thunks, vtables, abi tags) and stops
/// with a <see cref="FormatException"/> at what it does not know (expressions beyond literals, decltype): the caller
/// then shows the name as it is, never a wrong one.
/// </summary>
internal sealed class ItaniumParser
{
    private const int MaxDepth = 256;

    private readonly string _text;
    private int _position;
    private int _depth;
    // Every substitutable component seen so far, in order: S_ is the first, S0_ the second...
    private readonly List<CxxNode> _substitutions = [];
    // The template arguments of the function being read: what T_, T0_... stand for in its signature.
    private IReadOnlyList<CxxNode> _templateArguments = [];

    private ItaniumParser(string text, int start)
    {
        _text = text;
        _position = start;
    }

    /// <summary>What a name tells the encoding that holds it.</summary>
    private sealed class NameInfo
    {
        public bool EndsWithTemplateArguments;
        public bool IsStructorOrConversion;
        public string Qualifiers = "";
    }

    /// <summary>Reads <paramref name="mangled"/> (starting "_Z", clone suffixes cut off) whole, or throws.</summary>
    public static CxxNode Parse(string mangled)
    {
        if (!mangled.StartsWith("_Z", StringComparison.Ordinal)) throw new FormatException("not an Itanium C++ name");
        var parser = new ItaniumParser(mangled, 2);
        var node = parser.Encoding();
        if (parser._position != mangled.Length) throw new FormatException($"unread text at {parser._position}");
        return node;
    }

    private bool AtEnd => _position >= _text.Length;

    private char Peek(int ahead = 0) => _position + ahead < _text.Length ? _text[_position + ahead] : '\0';

    private bool Consume(char c)
    {
        if (Peek() != c) return false;
        _position++;
        return true;
    }

    private bool Consume(string s)
    {
        if (string.CompareOrdinal(_text, _position, s, 0, s.Length) != 0) return false;
        _position += s.Length;
        return true;
    }

    private void Expect(char c)
    {
        if (!Consume(c)) throw new FormatException($"expected '{c}' at {_position}");
    }

    private static FormatException Unsupported(string what) => new($"unsupported: {what}");

    private DepthGuard Enter() => new(this);

    private readonly struct DepthGuard : IDisposable
    {
        private readonly ItaniumParser _parser;

        public DepthGuard(ItaniumParser parser)
        {
            _parser = parser;
            if (++parser._depth > MaxDepth) throw new FormatException("nested too deep");
        }

        public void Dispose() => _parser._depth--;
    }

    // <encoding> ::= <name> <bare-function-type> | <name> | <special-name>
    private CxxNode Encoding()
    {
        using var _ = Enter();
        if (Peek() == 'T' || (Peek() == 'G' && Peek(1) is 'V' or 'R' or 'T' or 'A')) return SpecialName();
        var info = new NameInfo();
        var name = Name(info);
        if (AtEnd || Peek() == 'E' || Peek() == '.') return name;
        var templateArguments = info.EndsWithTemplateArguments ? _templateArguments : null;
        CxxNode? returnType = null;
        if (info.EndsWithTemplateArguments && !info.IsStructorOrConversion) returnType = Type();
        var parameters = new List<CxxNode>();
        while (!AtEnd && Peek() != 'E' && Peek() != '.') parameters.Add(Type());
        if (parameters.Count == 0) throw new FormatException("a function without parameter types");
        if (parameters is [TextNode { Text: "void" }]) parameters.Clear();
        return new EncodingNode(name, returnType, parameters, info.Qualifiers, templateArguments);
    }

    private CxxNode SpecialName()
    {
        if (Consume("TV")) return new SpecialNode("vtable for ", Type());
        if (Consume("TT")) return new SpecialNode("VTT for ", Type());
        if (Consume("TI")) return new SpecialNode("typeinfo for ", Type());
        if (Consume("TS")) return new SpecialNode("typeinfo name for ", Type());
        if (Consume("TH")) return new SpecialNode("TLS init function for ", Name(null));
        if (Consume("TW")) return new SpecialNode("TLS wrapper function for ", Name(null));
        if (Consume("Th"))
        {
            CallOffsetPart();
            return new SpecialNode("non-virtual thunk to ", Encoding());
        }
        if (Consume("Tv"))
        {
            CallOffsetPart();
            CallOffsetPart();
            return new SpecialNode("virtual thunk to ", Encoding());
        }
        if (Consume("Tc"))
        {
            CallOffset();
            CallOffset();
            return new SpecialNode("covariant return thunk to ", Encoding());
        }
        if (Consume("TC"))
        {
            var derived = Type();
            Number();
            Expect('_');
            var baseType = Type();
            return new SpecialNode("construction vtable for ", baseType, "-in-" + derived);
        }
        if (Consume("GV")) return new SpecialNode("guard variable for ", Name(null));
        if (Consume("GR"))
        {
            var name = Name(null);
            var index = Peek() == '_' ? 0 : SequenceNumber() + 1;
            Expect('_');
            return new SpecialNode($"reference temporary #{index} for ", name);
        }
        if (Consume("GTt")) return new SpecialNode("transaction clone for ", Encoding());
        if (Consume("GTn")) return new SpecialNode("non-transaction clone for ", Encoding());
        if (Consume("GA")) return new SpecialNode("hidden alias for ", Encoding());
        throw Unsupported("special name");
    }

    // <call-offset> ::= h <nv-offset> _ | v <v-offset> _
    private void CallOffset()
    {
        if (!Consume('h') && !Consume('v')) throw new FormatException("expected a call offset");
        var virtualOffset = _text[_position - 1] == 'v';
        CallOffsetPart();
        if (virtualOffset) CallOffsetPart();
    }

    private void CallOffsetPart()
    {
        Number();
        Expect('_');
    }

    // <name> ::= <nested-name> | <local-name> | <unscoped-name> | <unscoped-template-name> <template-args>
    private CxxNode Name(NameInfo? info)
    {
        using var _ = Enter();
        if (Peek() == 'N') return NestedName(info);
        if (Peek() == 'Z') return LocalName(info);
        CxxNode name;
        if (Peek() == 'S' && Peek(1) != 't')
        {
            name = Substitution();
            if (Peek() != 'I') throw new FormatException("a substitution as a name without template arguments");
        }
        else
        {
            var inStd = Consume("St");
            name = UnqualifiedName(info, null);
            if (inStd) name = new NestedNode(new TextNode("std"), name);
            if (Peek() != 'I') return name;
            _substitutions.Add(name);
        }
        name = new TemplateNode(name, TemplateArguments(info is not null));
        if (info is not null) info.EndsWithTemplateArguments = true;
        return name;
    }

    // <nested-name> ::= N [<CV-qualifiers>] [<ref-qualifier>] <prefix> <unqualified-name> E
    private CxxNode NestedName(NameInfo? info)
    {
        Expect('N');
        var qualifiers = CvQualifiers();
        if (Consume('R')) qualifiers += " &";
        else if (Consume('O')) qualifiers += " &&";
        if (info is not null) info.Qualifiers = qualifiers;
        CxxNode? soFar = null;
        while (!Consume('E'))
        {
            if (AtEnd) throw new FormatException("unterminated nested name");
            Consume('L');
            if (Peek() == 'M')
            {
                // <data-member-prefix>: a closure in a member's initializer; the member's name is already the last part.
                _position++;
                continue;
            }
            if (Peek() == 'T')
            {
                soFar = Join(soFar, TemplateParameter());
                _substitutions.Add(soFar);
                continue;
            }
            if (Peek() == 'I')
            {
                if (soFar is null) throw new FormatException("template arguments without a name");
                soFar = new TemplateNode(soFar, TemplateArguments(info is not null));
                if (info is not null) info.EndsWithTemplateArguments = true;
                _substitutions.Add(soFar);
                continue;
            }
            if (Peek() == 'D' && Peek(1) is 't' or 'T') throw Unsupported("decltype prefix");
            if (Peek() == 'S' && Peek(1) != 't')
            {
                var substitution = Substitution();
                soFar = Join(soFar, substitution);
                if (info is not null) info.EndsWithTemplateArguments = false;
                continue;
            }
            if (Peek() == 'C' || (Peek() == 'D' && Peek(1) != 'C'))
            {
                if (soFar is null) throw new FormatException("a constructor without a class");
                soFar = AbiTags(Join(soFar, Structor(soFar, info)));
                if (info is not null) info.EndsWithTemplateArguments = false;
                _substitutions.Add(soFar);
                continue;
            }
            CxxNode component;
            if (Consume("St")) component = new NestedNode(new TextNode("std"), UnqualifiedName(info, soFar));
            else component = UnqualifiedName(info, soFar);
            soFar = Join(soFar, component);
            if (info is not null) info.EndsWithTemplateArguments = false;
            _substitutions.Add(soFar);
        }
        if (soFar is null) throw new FormatException("empty nested name");
        // The whole name is not a prefix of anything: only its parts are substitutable (a type adds itself again).
        if (_substitutions.Count > 0 && ReferenceEquals(_substitutions[^1], soFar)) _substitutions.RemoveAt(_substitutions.Count - 1);
        return soFar;
    }

    private static CxxNode Join(CxxNode? qualifier, CxxNode name) => qualifier is null ? name : new NestedNode(qualifier, name);

    // <local-name> ::= Z <function encoding> E <entity name> [<discriminator>] | Z <encoding> E s [<discriminator>]
    private CxxNode LocalName(NameInfo? info)
    {
        Expect('Z');
        var function = Encoding();
        Expect('E');
        if (Consume('s'))
        {
            Discriminator();
            return new LocalNameNode(function, new TextNode("string literal"));
        }
        if (Consume('d')) throw Unsupported("default argument scope");
        var entity = Name(info);
        Discriminator();
        return new LocalNameNode(function, entity);
    }

    // <discriminator> ::= _ <digit> | __ <number> _   (not written, as c++filt)
    private void Discriminator()
    {
        if (Peek() != '_') return;
        if (char.IsAsciiDigit(Peek(1)))
        {
            _position += 2;
            return;
        }
        if (Peek(1) == '_' && char.IsAsciiDigit(Peek(2)))
        {
            _position += 2;
            Number();
            Expect('_');
        }
    }

    private CxxNode UnqualifiedName(NameInfo? info, CxxNode? scope)
    {
        CxxNode name;
        var c = Peek();
        if (char.IsAsciiDigit(c)) name = SourceName();
        else if (c == 'U') name = UnnamedTypeName();
        else if (c == 'L')
        {
            _position++;
            name = SourceName();
            Discriminator();
        }
        else if (c == 'D' && Peek(1) == 'C')
        {
            _position += 2;
            var bindings = new List<CxxNode>();
            while (!Consume('E')) bindings.Add(SourceName());
            var output = new CxxWriter().Add('[');
            CxxNode.WriteList(output, bindings);
            name = new TextNode(output.Add(']').ToString());
        }
        else if (char.IsAsciiLetterLower(c)) name = OperatorName(info);
        else if (c is 'C' or 'D' && scope is not null) name = Structor(scope, info);
        else throw new FormatException($"unexpected '{c}' at {_position}");
        return AbiTags(name);
    }

    private CxxNode AbiTags(CxxNode name)
    {
        while (Consume('B')) name = new AbiTagNode(name, SourceNameText());
        return name;
    }

    private CxxNode OperatorName(NameInfo? info)
    {
        if (Consume("cv"))
        {
            if (info is not null) info.IsStructorOrConversion = true;
            return new ConversionNode(Type());
        }
        if (Consume("li")) return new TextNode("operator\"\" " + SourceNameText());
        if (Peek() == 'v' && char.IsAsciiDigit(Peek(1)))
        {
            _position += 2;
            return new TextNode("operator " + SourceNameText());
        }
        var code = _position + 2 <= _text.Length ? _text.Substring(_position, 2) : "";
        var text = CxxVocabulary.Operator(code) ?? throw new FormatException($"unknown operator '{code}'");
        _position += 2;
        return new TextNode("operator" + text);
    }

    // <ctor-dtor-name> ::= C1 | C2 | C3 | C4 | C5 | CI1 <type> | CI2 <type> | D0 | D1 | D2 | D4 | D5
    private CxxNode Structor(CxxNode scope, NameInfo? info)
    {
        if (info is not null) info.IsStructorOrConversion = true;
        if (Consume('C'))
        {
            var inheriting = Consume('I');
            if (Peek() is < '1' or > '5') throw new FormatException("bad constructor kind");
            _position++;
            if (inheriting) Type();
            return new StructorNode(scope, destructor: false);
        }
        Expect('D');
        if (Peek() is not ('0' or '1' or '2' or '4' or '5')) throw new FormatException("bad destructor kind");
        _position++;
        return new StructorNode(scope, destructor: true);
    }

    // <unnamed-type-name> ::= Ut [<number>] _ | Ul <lambda-sig> E [<number>] _
    private CxxNode UnnamedTypeName()
    {
        if (Consume("Ut"))
        {
            var index = Peek() == '_' ? 1 : Number() + 2;
            Expect('_');
            return new TextNode($"{{unnamed type#{index}}}");
        }
        if (!Consume("Ul")) throw new FormatException("expected a lambda or unnamed type");
        if (Peek() == 'T' && Peek(1) is 'y' or 'n' or 't' or 'p') throw Unsupported("lambda template parameters");
        var parameters = new List<CxxNode>();
        while (!Consume('E')) parameters.Add(Type());
        if (parameters is [TextNode { Text: "void" }]) parameters.Clear();
        var number = Peek() == '_' ? 1 : Number() + 2;
        Expect('_');
        return new LambdaNode(parameters, (int)number);
    }

    private CxxNode SourceName()
    {
        var identifier = SourceNameText();
        if (identifier.StartsWith("_GLOBAL_", StringComparison.Ordinal) && identifier.Length > 9
            && identifier[8] is '.' or '_' or '$' && identifier[9] == 'N')
            return new TextNode("(anonymous namespace)");
        return new TextNode(identifier);
    }

    // <source-name> ::= <positive length number> <identifier>
    private string SourceNameText()
    {
        var length = Number();
        if (length <= 0 || _position + length > _text.Length) throw new FormatException("bad source name length");
        var identifier = _text.Substring(_position, (int)length);
        _position += (int)length;
        return identifier;
    }

    private long Number()
    {
        var negative = Consume('n');
        var start = _position;
        while (char.IsAsciiDigit(Peek())) _position++;
        if (_position == start || _position - start > 18) throw new FormatException("expected a number");
        var value = long.Parse(_text.AsSpan(start, _position - start), NumberStyles.None, CultureInfo.InvariantCulture);
        return negative ? -value : value;
    }

    // <seq-id> in base 36, digits then upper-case letters.
    private int SequenceNumber()
    {
        var value = 0;
        var start = _position;
        while (Peek() is >= '0' and <= '9' or >= 'A' and <= 'Z')
        {
            var c = Peek();
            value = checked(value * 36 + (c <= '9' ? c - '0' : c - 'A' + 10));
            _position++;
        }
        if (_position == start) throw new FormatException("expected a sequence number");
        return value;
    }

    private string CvQualifiers()
    {
        var restrict = Consume('r');
        var isVolatile = Consume('V');
        var isConst = Consume('K');
        return (isConst ? " const" : "") + (isVolatile ? " volatile" : "") + (restrict ? " restrict" : "");
    }

    // <substitution> ::= S_ | S <seq-id> _ | St | Sa | Sb | Ss | Si | So | Sd
    private CxxNode Substitution()
    {
        Expect('S');
        if (CxxVocabulary.Abbreviation(Peek()) is { } abbreviation)
        {
            _position++;
            return abbreviation;
        }
        var index = Peek() == '_' ? 0 : SequenceNumber() + 1;
        Expect('_');
        if (index >= _substitutions.Count) throw new FormatException($"substitution {index} of {_substitutions.Count}");
        return _substitutions[index];
    }

    // <template-param> ::= T_ | T <number> _
    private CxxNode TemplateParameter()
    {
        Expect('T');
        var index = Peek() == '_' ? 0 : Number() + 1;
        Expect('_');
        if (index >= _templateArguments.Count) throw new FormatException($"template parameter {index} of {_templateArguments.Count}");
        return new TemplateParameterNode((int)index, _templateArguments[(int)index]);
    }

    // <template-args> ::= I <template-arg>+ E
    private List<CxxNode> TemplateArguments(bool ofTheFunction)
    {
        using var _ = Enter();
        Expect('I');
        var arguments = new List<CxxNode>();
        while (!Consume('E'))
        {
            if (AtEnd) throw new FormatException("unterminated template arguments");
            arguments.Add(TemplateArgument());
        }
        if (ofTheFunction) _templateArguments = arguments;
        return arguments;
    }

    private CxxNode TemplateArgument()
    {
        switch (Peek())
        {
            case 'L':
                return ExpressionPrimary();
            case 'J':
                _position++;
                var elements = new List<CxxNode>();
                while (!Consume('E'))
                {
                    if (AtEnd) throw new FormatException("unterminated pack");
                    elements.Add(TemplateArgument());
                }
                return new PackNode(elements);
            case 'X':
                _position++;
                var expression = Expression();
                Expect('E');
                return expression;
            default:
                return Type();
        }
    }

    // Expressions beyond a template parameter, a literal or a qualified name (enable_if's is_signed<T>::value) are
    // left to the caller's fallback.
    private CxxNode Expression()
    {
        using var _ = Enter();
        if (Peek() == 'L') return ExpressionPrimary();
        if (Peek() == 'T') return TemplateParameter();
        if (Consume("sr")) return UnresolvedName();
        throw Unsupported("expression");
    }

    // <unresolved-name> ::= sr <unresolved-type> <base-unresolved-name>
    //                   ::= srN <unresolved-type> <unresolved-qualifier-level>+ E <base-unresolved-name>
    //                   ::= sr <unresolved-qualifier-level>+ E <base-unresolved-name>
    private CxxNode UnresolvedName()
    {
        var scope = Consume('N') ? QualifierLevels(UnresolvedType())
            : char.IsAsciiDigit(Peek()) ? QualifierLevels(SimpleId())
            : UnresolvedType();
        if (!char.IsAsciiDigit(Peek())) throw Unsupported("unresolved operator or destructor name");
        return new NestedNode(scope, SimpleId());
    }

    // <unresolved-qualifier-level>* E, after the first
    private CxxNode QualifierLevels(CxxNode scope)
    {
        while (!Consume('E'))
        {
            if (AtEnd) throw new FormatException("unterminated qualified name");
            scope = new NestedNode(scope, SimpleId());
        }
        return scope;
    }

    // <unresolved-type> ::= <template-param> [<template-args>] | <substitution>
    private CxxNode UnresolvedType()
    {
        if (Peek() == 'T')
        {
            var parameter = TemplateParameter();
            _substitutions.Add(parameter);
            if (Peek() != 'I') return parameter;
            var named = new TemplateNode(parameter, TemplateArguments(false));
            _substitutions.Add(named);
            return named;
        }
        if (Peek() == 'S' && Peek(1) != 't') return Substitution();
        throw Unsupported("unresolved type");
    }

    // <simple-id> ::= <source-name> [<template-args>]
    private CxxNode SimpleId()
    {
        var name = SourceName();
        return Peek() == 'I' ? new TemplateNode(name, TemplateArguments(false)) : name;
    }

    // <expr-primary> ::= L <type> <value number> E | L <mangled-name> E
    private CxxNode ExpressionPrimary()
    {
        Expect('L');
        if (Consume("_Z"))
        {
            var entity = Encoding();
            Expect('E');
            return entity;
        }
        var code = Peek();
        if (code == 'b' && Peek(1) is '0' or '1' && Peek(2) == 'E')
        {
            _position += 3;
            return new TextNode(_text[_position - 2] == '1' ? "true" : "false");
        }
        var type = Type();
        // Written as the digits stand: a 64-bit unsigned value can be longer than a long.
        var negative = Consume('n');
        var start = _position;
        while (char.IsAsciiDigit(Peek())) _position++;
        if (_position == start) throw Unsupported("literal");
        var value = (negative ? "-" : "") + _text[start.._position];
        Expect('E');
        if (type is TextNode builtin && CxxVocabulary.Builtin(code) == builtin.Text && CxxVocabulary.LiteralSuffix(code) is { } suffix)
            return new TextNode(value + suffix);
        return new TextNode($"({type}){value}");
    }

    private CxxNode Type()
    {
        using var _ = Enter();
        var c = Peek();
        if (CxxVocabulary.Builtin(c) is { } builtin)
        {
            _position++;
            return new TextNode(builtin);
        }
        CxxNode result;
        switch (c)
        {
            case 'u':
                _position++;
                return new TextNode(SourceNameText());
            case 'r' or 'V' or 'K':
                var qualifiers = CvQualifiers();
                // A qualified function type is one type (its qualifiers apply to the implicit object), one substitution.
                if (Peek() == 'F') result = FunctionType(qualifiers, "");
                else if (Peek() == 'D' && Peek(1) is 'o' or 'x' && Peek(2) == 'F') result = DType(qualifiers);
                else result = new QualifiedNode(Type(), qualifiers);
                break;
            case 'P' or 'R' or 'O':
                _position++;
                result = new PointerNode(Type(), c switch { 'P' => "*", 'R' => "&", _ => "&&" });
                break;
            case 'C' or 'G':
                _position++;
                result = new QualifiedNode(Type(), c == 'C' ? " _Complex" : " _Imaginary");
                break;
            case 'F':
                result = FunctionType("", "");
                break;
            case 'A':
                result = ArrayType();
                break;
            case 'M':
                _position++;
                var owner = Type();
                result = new MemberPointerNode(owner, Type());
                break;
            case 'T':
                result = TemplateParameter();
                if (Peek() == 'I')
                {
                    _substitutions.Add(result);
                    result = new TemplateNode(result, TemplateArguments(false));
                }
                break;
            case 'S' when Peek(1) != 't':
                var substitution = Substitution();
                if (Peek() != 'I') return substitution;
                result = new TemplateNode(substitution, TemplateArguments(false));
                break;
            case 'D':
                if (CxxVocabulary.DBuiltin(Peek(1)) is { } dBuiltin)
                {
                    _position += 2;
                    return new TextNode(dBuiltin);
                }
                result = DType("");
                break;
            case 'U':
                throw Unsupported("vendor qualifier");
            default:
                result = Name(null);
                break;
        }
        _substitutions.Add(result);
        return result;
    }

    private CxxNode DType(string qualifiers)
    {
        switch (Peek(1))
        {
            case 'p':
                _position += 2;
                return new PackExpansionNode(Type());
            case 'v':
                _position += 2;
                var dimension = Number().ToString(CultureInfo.InvariantCulture);
                Expect('_');
                return new VectorNode(Type(), dimension);
            case 'F':
                _position += 2;
                var bits = Number().ToString(CultureInfo.InvariantCulture);
                var extended = Consume('x');
                Expect('_');
                return new TextNode("_Float" + bits + (extended ? "x" : ""));
            case 'o':
                _position += 2;
                return ExpectFunctionAfterExceptionSpec(qualifiers, " noexcept");
            case 'x':
                _position += 2;
                return ExpectFunctionAfterExceptionSpec(qualifiers, " transaction_safe");
            default:
                throw Unsupported($"D{Peek(1)} type");
        }
    }

    private CxxNode ExpectFunctionAfterExceptionSpec(string qualifiers, string suffix)
    {
        if (Peek() != 'F') throw new FormatException("an exception specification without a function type");
        return FunctionType(qualifiers, suffix);
    }

    // <function-type> ::= [<CV-qualifiers>] [Dx] F [Y] <bare-function-type> [<ref-qualifier>] E
    private CxxNode FunctionType(string qualifiers, string exceptionSuffix)
    {
        Expect('F');
        Consume('Y');
        var returnType = Type();
        var parameters = new List<CxxNode>();
        var reference = "";
        while (!Consume('E'))
        {
            if (AtEnd) throw new FormatException("unterminated function type");
            if (Peek() == 'R' && Peek(1) == 'E')
            {
                _position++;
                reference = " &";
                continue;
            }
            if (Peek() == 'O' && Peek(1) == 'E')
            {
                _position++;
                reference = " &&";
                continue;
            }
            parameters.Add(Type());
        }
        if (parameters is [TextNode { Text: "void" }]) parameters.Clear();
        return new FunctionTypeNode(returnType, parameters, qualifiers + reference + exceptionSuffix);
    }

    // <array-type> ::= A <positive dimension number> _ <element type> | A [<dimension expression>] _ <element type>
    private CxxNode ArrayType()
    {
        Expect('A');
        var dimension = "";
        if (char.IsAsciiDigit(Peek())) dimension = Number().ToString(CultureInfo.InvariantCulture);
        else if (Peek() != '_') dimension = Expression().ToString();
        Expect('_');
        return new ArrayNode(Type(), dimension);
    }
}
