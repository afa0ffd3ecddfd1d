namespace Pyprobe.Usdt.Tests;

/// <summary>Every argument form and register name of kernel-bpf.md §3.6, plus the rejects.</summary>
public class ArgumentParserTests
{
    // (name, 64-bit register, pt_regs offset, width)
    public static TheoryData<string, string, int, int> AllRegisterNames()
    {
        var d = new TheoryData<string, string, int, int>();
        void Four(string r64, string r32, string r16, string r8, int off)
        {
            d.Add(r64, r64, off, 8); d.Add(r32, r64, off, 4); d.Add(r16, r64, off, 2); d.Add(r8, r64, off, 1);
        }
        Four("rax", "eax", "ax", "al", 80);
        Four("rbx", "ebx", "bx", "bl", 40);
        Four("rcx", "ecx", "cx", "cl", 88);
        Four("rdx", "edx", "dx", "dl", 96);
        Four("rsi", "esi", "si", "sil", 104);
        Four("rdi", "edi", "di", "dil", 112);
        Four("rbp", "ebp", "bp", "bpl", 32);
        Four("rsp", "esp", "sp", "spl", 152);
        int[] rOffsets = [72, 64, 56, 48, 24, 16, 8, 0]; // r8..r15
        for (int i = 8; i <= 15; i++)
            Four($"r{i}", $"r{i}d", $"r{i}w", $"r{i}b", rOffsets[i - 8]);
        d.Add("rip", "rip", 128, 8);
        d.Add("eip", "rip", 128, 4);
        return d;
    }

    [Theory]
    [MemberData(nameof(AllRegisterNames))]
    public void RegisterForm_MapsEverySubRegisterToItsPtRegsSlot(string name, string full, int offset, int width)
    {
        var a = Assert.IsType<UsdtRegisterArgument>(UsdtArgumentParser.Parse($"-4@%{name}", "p:r"));
        Assert.Equal(name, a.Register.Name);
        Assert.Equal(full, a.Register.FullName);
        Assert.Equal(offset, a.PtRegsOffset);
        Assert.Equal(width, a.Register.WidthBytes);
        Assert.Equal(4, a.Size);
        Assert.True(a.Signed);
    }

    [Fact]
    public void RegisterTable_HasAllNamesAndOffsetsInsidePtRegs()
    {
        Assert.Equal(AllRegisterNames().Count(), X86Register.All.Count);
        Assert.All(X86Register.All, r => Assert.InRange(r.PtRegsOffset, 0, X86Register.PtRegsSize - 8));
    }

    [Theory]
    [InlineData("1@%al", 1, false)]
    [InlineData("-1@%sil", 1, true)]
    [InlineData("2@%ax", 2, false)]
    [InlineData("-2@%r9w", 2, true)]
    [InlineData("4@%eax", 4, false)]
    [InlineData("-4@%eax", 4, true)]
    [InlineData("8@%rdx", 8, false)]
    [InlineData("-8@%r12", 8, true)]
    public void Sizes_AllFourWidthsSignedAndUnsigned(string text, int size, bool signed)
    {
        var a = UsdtArgumentParser.Parse(text);
        Assert.Equal(size, a.Size);
        Assert.Equal(signed, a.Signed);
        Assert.Equal(text, a.Text);
    }

    [Theory]
    [InlineData("4@$71", 71L)]
    [InlineData("-4@$-42", -42L)]
    [InlineData("8@$0", 0L)]
    [InlineData("8@$0x10", 16L)]
    [InlineData("8@$0X1f", 31L)]
    [InlineData("-8@$-0x10", -16L)]
    [InlineData("8@$0xffffffffffffffff", -1L)]
    [InlineData("-8@$-9223372036854775808", long.MinValue)]
    [InlineData("8@$9223372036854775807", long.MaxValue)]
    public void Constant_DecimalNegativeAndHex(string text, long value)
    {
        var a = Assert.IsType<UsdtConstantArgument>(UsdtArgumentParser.Parse(text));
        Assert.Equal(value, a.Value);
    }

    [Theory]
    [InlineData("-4@112(%rsp)", "rsp", 152, 112L)]
    [InlineData("-4@-228(%rbp)", "rbp", 32, -228L)]
    [InlineData("8@(%rsp)", "rsp", 152, 0L)]
    [InlineData("8@0x10(%rax)", "rax", 80, 16L)]
    [InlineData("8@-0x10(%r13)", "r13", 16, -16L)]
    [InlineData("4@16(%r8d)", "r8", 72, 16L)]
    [InlineData("8@16(%rip)", "rip", 128, 16L)]
    public void Memory_BasePlusDisplacement(string text, string baseFull, int baseOffset, long disp)
    {
        var a = Assert.IsType<UsdtMemoryArgument>(UsdtArgumentParser.Parse(text));
        Assert.Equal(baseFull, a.Base.FullName);
        Assert.Equal(baseOffset, a.Base.PtRegsOffset);
        Assert.Equal(disp, a.Displacement);
    }

    [Theory]
    [InlineData("-1@-96(%rbp,%rax,8)", "rbp", "rax", 8, -96L)]
    [InlineData("-4@-72(%rsp,%rax,4)", "rsp", "rax", 4, -72L)]
    [InlineData("4@(%rdi,%rsi,2)", "rdi", "rsi", 2, 0L)]
    [InlineData("8@16(%r15,%r14)", "r15", "r14", 1, 16L)]
    [InlineData("8@(%rbx,%rcx)", "rbx", "rcx", 1, 0L)]
    [InlineData("2@0x20(%r10,%r11,1)", "r10", "r11", 1, 32L)]
    public void Indexed_AllSibShapes(string text, string b, string i, int scale, long disp)
    {
        var a = Assert.IsType<UsdtIndexedArgument>(UsdtArgumentParser.Parse(text));
        Assert.Equal(b, a.Base.FullName);
        Assert.Equal(i, a.Index.FullName);
        Assert.Equal(scale, a.Scale);
        Assert.Equal(System.Numerics.BitOperations.Log2((uint)scale), a.ScaleShift);
        Assert.Equal(disp, a.Displacement);
    }

    [Theory]
    [InlineData("-8@g_counter(%rip)", "g_counter", 0L)]
    [InlineData("8@sym+16(%rip)", "sym", 16L)]
    [InlineData("8@sym-8(%rip)", "sym", -8L)]
    [InlineData("8@sym+0x10(%rip)", "sym", 16L)]
    [InlineData("-4@12+g_table(%rip)", "g_table", 12L)]      // what GCC really prints for g_table[3]
    [InlineData("4@counter.0(%rip)", "counter.0", 0L)]       // GCC's name for a static local
    [InlineData("4@_ZN3foo3barE+4(%rip)", "_ZN3foo3barE", 4L)]
    [InlineData("4@8+sym-2(%rip)", "sym", 6L)]
    public void RipRelative_SymbolPlusMinusAddend(string text, string symbol, long addend)
    {
        var a = Assert.IsType<UsdtRipRelativeArgument>(UsdtArgumentParser.Parse(text));
        Assert.Equal(symbol, a.Symbol);
        Assert.Equal(addend, a.Addend);
    }

    [Fact]
    public void List_SplitsOnSpacesAndKeepsOrder()
    {
        var args = UsdtArgumentParser.ParseList("8@%rbp 8@%r12 -4@%eax", "python:function__entry");
        Assert.Collection(args,
            a => Assert.Equal("rbp", Assert.IsType<UsdtRegisterArgument>(a).Register.Name),
            a => Assert.Equal(24, Assert.IsType<UsdtRegisterArgument>(a).PtRegsOffset),
            a => Assert.Equal(80, Assert.IsType<UsdtRegisterArgument>(a).PtRegsOffset));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(":")]
    [InlineData(":whatever")]
    public void List_EmptyOrColonMeansNoArguments(string text) =>
        Assert.Empty(UsdtArgumentParser.ParseList(text));

    [Theory]
    [InlineData("4@%ah", "high-byte")]
    [InlineData("4@%bh", "high-byte")]
    [InlineData("4@%ch", "high-byte")]
    [InlineData("4@%dh", "high-byte")]
    [InlineData("4@%xmm0", "unknown register")]
    [InlineData("4@%r16", "unknown register")]
    [InlineData("3@%eax", "size")]
    [InlineData("16@%rax", "size")]
    [InlineData("0@%rax", "size")]
    [InlineData("x@%rax", "size")]
    [InlineData("%rax", "SIZE@OPERAND")]
    [InlineData("4@", "empty operand")]
    [InlineData("4@$", "immediate")]
    [InlineData("4@$abc", "immediate")]
    [InlineData("4@$99999999999999999999", "immediate")]
    [InlineData("4@rax", "unrecognised")]
    [InlineData("4@8(%rax", "unrecognised")]
    [InlineData("4@8(rax)", "base register")]
    [InlineData("4@(%rax,%rbx,3)", "scale")]
    [InlineData("4@(%rax,%rbx,16)", "scale")]
    [InlineData("4@(%rax,rbx,2)", "index register")]
    [InlineData("4@(%rax,%rsp,2)", "cannot be an index")]
    [InlineData("4@(%rax,%rbx,2,1)", "expected")]
    [InlineData("4@sym(%rax)", "only supported as sym(%rip)")]
    [InlineData("4@sym(%rip,%rax,2)", "only supported as sym(%rip)")]
    [InlineData("4@sym@GOTPCREL(%rip)", "neither a number")]
    [InlineData("4@-sym(%rip)", "neither a number")]
    [InlineData("4@a+b(%rip)", "neither a number")]
    public void Rejects_NameTheProbeAndTheText(string text, string reason)
    {
        var e = Assert.Throws<UsdtArgumentException>(() => UsdtArgumentParser.ParseList($"8@%rax {text}", "python:gc__start"));
        Assert.Equal("python:gc__start", e.Probe);
        Assert.Equal(text, e.ArgumentText);
        Assert.Contains("python:gc__start", e.Message);
        Assert.Contains(text, e.Message);
        Assert.Contains(reason, e.Message);
        Assert.IsAssignableFrom<UsdtException>(e);
    }
}
