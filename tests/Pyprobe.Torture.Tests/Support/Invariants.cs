using Pyprobe.Usdt;

namespace Pyprobe.Torture.Tests;

/// <summary>What "a sane result" means for the parsers; each check returns null or a complaint.</summary>
public static class Invariants
{
    public const int MaxArguments = 12;

    public static string? CheckArgument(UsdtArgument a)
    {
        if (a.Size is not (1 or 2 or 4 or 8)) return $"size {a.Size}";
        if (string.IsNullOrEmpty(a.Text) || a.Text.Contains(' ') || a.Text.Contains('\t')) return $"text '{a.Text}'";
        switch (a)
        {
            case UsdtConstantArgument:
                return a.Text.Contains("@$") ? null : "constant without @$";
            case UsdtRegisterArgument r:
                return CheckRegister(r.Register);
            case UsdtMemoryArgument m:
                return CheckRegister(m.Base);
            case UsdtIndexedArgument x:
                if (x.Scale is not (1 or 2 or 4 or 8)) return $"scale {x.Scale}";
                if (1 << x.ScaleShift != x.Scale) return $"scale shift {x.ScaleShift} for scale {x.Scale}";
                if (x.Index.FullName is "rsp" or "rip") return $"index register {x.Index.Name}";
                if (x.Base.FullName == "rip") return "%rip as the base of an indexed operand";
                return CheckRegister(x.Base) ?? CheckRegister(x.Index);
            case UsdtRipRelativeArgument s:
                if (s.Symbol.Length == 0) return "empty symbol";
                if (!(char.IsAsciiLetter(s.Symbol[0]) || s.Symbol[0] is '_' or '.')) return $"symbol '{s.Symbol}'";
                return null;
            default:
                return $"unknown argument type {a.GetType().Name}";
        }
    }

    private static string? CheckRegister(X86Register r)
    {
        if (r.PtRegsOffset is < 0 or > 160 || r.PtRegsOffset % 8 != 0) return $"pt_regs offset {r.PtRegsOffset} of %{r.Name}";
        if (r.WidthBytes is not (1 or 2 or 4 or 8)) return $"width {r.WidthBytes} of %{r.Name}";
        return null;
    }

    public static string? CheckArguments(IReadOnlyList<UsdtArgument> args, string text)
    {
        if (args.Count > MaxArguments) return $"{args.Count} arguments accepted (max {MaxArguments})";
        int from = 0;
        foreach (var a in args)
        {
            if (CheckArgument(a) is { } bad) return $"argument '{a.Text}': {bad}";
            // Tokens come from the text, in order.
            int at = text.IndexOf(a.Text, from, StringComparison.Ordinal);
            if (at < 0) return $"argument text '{a.Text}' is not (in order) part of the input";
            from = at + a.Text.Length;
        }
        return null;
    }

    /// <summary>A sane opened binary: every site's offsets inside the file, arguments consistent.</summary>
    public static string? CheckBinary(UsdtBinary b, long fileLength)
    {
        foreach (var s in b.Elf.Sections)
            if (s.HasFileData && s.Size > 0 && (s.FileOffset > (ulong)fileLength || s.Size > (ulong)fileLength - s.FileOffset))
                return $"section {s.Name} [0x{s.FileOffset:x}+0x{s.Size:x}] beyond file length 0x{fileLength:x}";
        foreach (var p in b.Probes)
        {
            if (p.Provider.Length == 0 || p.Name.Length == 0) return "empty provider or name";
            if (p.Sites.Count == 0) return $"probe {p.Id} without sites";
            foreach (var s in p.Sites)
            {
                if (s.FileOffset >= (ulong)fileLength) return $"probe {p.Id}: site file offset 0x{s.FileOffset:x} >= file length 0x{fileLength:x}";
                if (s.SemaphoreAddress != 0 && s.SemaphoreFileOffset >= (ulong)fileLength)
                    return $"probe {p.Id}: semaphore file offset 0x{s.SemaphoreFileOffset:x} >= file length 0x{fileLength:x}";
                if (CheckArguments(s.Arguments, s.ArgumentText) is { } bad) return $"probe {p.Id}: {bad}";
            }
        }
        return null;
    }
}
