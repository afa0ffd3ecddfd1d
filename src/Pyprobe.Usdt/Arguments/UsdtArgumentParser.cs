using System.Globalization;

namespace Pyprobe.Usdt;

/// <summary>
/// Parses the x86-64 (AT&amp;T syntax) argument strings of stapsdt notes, e.g.
/// "8@%rbp 8@%r12 -4@%eax" or "-4@112(%rsp)". Covers every form sys/sdt.h produces with GCC/Clang:
/// registers (all sub-register names), immediates, base+displacement, SIB (base,index[,scale]) and
/// symbol(%rip) with optional ±addend (kernel-bpf.md §3.6). Anything else is rejected with a
/// <see cref="UsdtArgumentException"/> naming the probe and the offending token.
/// </summary>
public static class UsdtArgumentParser
{
    /// <summary>The most arguments a stapsdt note may carry (sys/sdt.h, libbpf's USDT_MAX_ARG_CNT).</summary>
    internal const int MaxArguments = 12;

    /// <summary>
    /// Parses a whole space-separated argument string. An empty string or one starting with ':'
    /// (how some toolchains spell "no arguments") yields no arguments.
    /// </summary>
    /// <param name="probe">"provider:name" used in error messages.</param>
    public static IReadOnlyList<UsdtArgument> ParseList(string text, string probe = "?")
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed[0] == ':') return [];
        var tokens = trimmed.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        // sys/sdt.h emits at most 12 operands and the code generator has room for no more; reject
        // here so an odd note is a clear error at open time, not a crash later.
        if (tokens.Length > MaxArguments)
            throw Fail(probe, tokens[MaxArguments], $"argument {MaxArguments + 1} of {tokens.Length}: a USDT probe has at most {MaxArguments} arguments");
        var result = new List<UsdtArgument>(tokens.Length);
        foreach (var token in tokens)
            result.Add(Parse(token, probe));
        return result;
    }

    /// <summary>Parses one "N@operand" token.</summary>
    public static UsdtArgument Parse(string token, string probe = "?")
    {
        int at = token.IndexOf('@');
        if (at <= 0)
            throw Fail(probe, token, "expected SIZE@OPERAND");
        var sizeText = token[..at];
        // Range check before Math.Abs: Math.Abs(int.MinValue) throws OverflowException.
        if (!int.TryParse(sizeText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) || n is not (-8 or -4 or -2 or -1 or 1 or 2 or 4 or 8))
            throw Fail(probe, token, $"size '{sizeText}' is not one of ±1, ±2, ±4, ±8");
        int size = Math.Abs(n);
        bool signed = n < 0;
        var op = token[(at + 1)..];
        if (op.Length == 0)
            throw Fail(probe, token, "empty operand");

        if (op[0] == '$')
        {
            if (!TryParseInteger(op[1..], out long imm))
                throw Fail(probe, token, $"immediate '{op}' is not a decimal or 0x-hex integer");
            return new UsdtConstantArgument(size, signed, token, imm);
        }

        if (op[0] == '%')
            return new UsdtRegisterArgument(size, signed, token, Register(op[1..], probe, token));

        // Memory forms: [disp](%base[,%index[,scale]])
        int open = op.IndexOf('(');
        if (open < 0 || op[^1] != ')')
            throw Fail(probe, token, "unrecognised operand (expected $imm, %reg or disp(%reg...))");
        var dispText = op[..open];
        var inner = op[(open + 1)..^1].Split(',');
        if (inner.Length is < 1 or > 3)
            throw Fail(probe, token, "expected (%base), (%base,%index) or (%base,%index,scale)");
        if (inner[0].Length == 0 || inner[0][0] != '%')
            throw Fail(probe, token, "missing base register");
        var baseReg = Register(inner[0][1..], probe, token);

        long disp = 0;
        string? symbol = null;
        if (dispText.Length > 0 && !TryParseInteger(dispText, out disp))
        {
            // Not a number: must be sym, sym+K or sym-K, and only meaningful relative to %rip.
            if (!TrySplitSymbol(dispText, out symbol, out disp))
                throw Fail(probe, token, $"displacement '{dispText}' is neither a number nor symbol[±offset]");
            if (baseReg.FullName != "rip" || inner.Length != 1)
                throw Fail(probe, token, "a symbolic displacement is only supported as sym(%rip)");
        }

        if (inner.Length == 1)
        {
            if (symbol is not null)
                return new UsdtRipRelativeArgument(size, signed, token, symbol, disp);
            return new UsdtMemoryArgument(size, signed, token, baseReg, disp);
        }

        if (baseReg.FullName == "rip")
            throw Fail(probe, token, "%rip cannot be the base of an indexed operand");
        if (inner[1].Length == 0 || inner[1][0] != '%')
            throw Fail(probe, token, "missing index register");
        var index = Register(inner[1][1..], probe, token);
        if (index.FullName is "rsp" or "rip")
            throw Fail(probe, token, $"%{index.Name} cannot be an index register");
        int scale = 1;
        if (inner.Length == 3 && (!int.TryParse(inner[2], NumberStyles.None, CultureInfo.InvariantCulture, out scale) || scale is not (1 or 2 or 4 or 8)))
            throw Fail(probe, token, $"scale '{inner[2]}' is not 1, 2, 4 or 8");
        return new UsdtIndexedArgument(size, signed, token, baseReg, index, scale, disp);
    }

    private static X86Register Register(string name, string probe, string token)
    {
        if (X86Register.TryGet(name) is { } r) return r;
        if (X86Register.IsHighByteRegister(name))
            throw Fail(probe, token, $"high-byte register %{name} is not supported (no pt_regs slot of its own)");
        throw Fail(probe, token, $"unknown register %{name}");
    }

    // Decimal or 0x-hex with optional sign; hex up to 64 bits wraps to the two's-complement value
    // because assemblers print large displacements/immediates that way.
    internal static bool TryParseInteger(string s, out long value)
    {
        value = 0;
        if (s.Length == 0) return false;
        bool neg = false;
        var body = s.AsSpan();
        if (body[0] is '-' or '+')
        {
            neg = body[0] == '-';
            body = body[1..];
        }
        if (body.Length == 0) return false;
        if (body.Length > 2 && body[0] == '0' && body[1] is 'x' or 'X')
        {
            if (!ulong.TryParse(body[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong u)) return false;
            value = neg ? unchecked(-(long)u) : unchecked((long)u);
            return true;
        }
        foreach (char c in body)
            if (c is < '0' or > '9') return false;
        if (!ulong.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out ulong d)) return false;
        if (neg)
        {
            if (d > 1UL << 63) return false;
            value = unchecked(-(long)d);
        }
        else
        {
            if (d > long.MaxValue) return false;
            value = (long)d;
        }
        return true;
    }

    // A symbolic displacement as GAS prints it: "sym", "sym+16", "sym-0x10", and also "12+sym"
    // (GCC writes constant-offset array elements that way: "-4@12+g_table(%rip)"). Parsed as a sum
    // of +/- terms with exactly one positive symbol term; symbol characters as GAS allows them
    // (incl. '.' for GCC's "counter.0" statics).
    private static bool TrySplitSymbol(string s, out string? symbol, out long addend)
    {
        symbol = null;
        addend = 0;
        int i = 0;
        bool negative = false;
        while (i < s.Length)
        {
            if (i > 0 || s[0] is '+' or '-')
            {
                if (s[i] is not ('+' or '-')) return false;
                negative = s[i] == '-';
                i++;
                if (i == s.Length) return false;
            }
            int start = i;
            if (char.IsAsciiLetter(s[i]) || s[i] is '_' or '.')
            {
                while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] is '_' or '.' or '$')) i++;
                if (symbol is not null || negative) return false;
                symbol = s[start..i];
            }
            else
            {
                while (i < s.Length && char.IsAsciiLetterOrDigit(s[i])) i++;
                if (!TryParseInteger(s[start..i], out long term)) return false;
                addend = unchecked(negative ? addend - term : addend + term);
            }
        }
        return symbol is not null;
    }

    private static UsdtArgumentException Fail(string probe, string token, string reason) => new(probe, token, reason);
}
