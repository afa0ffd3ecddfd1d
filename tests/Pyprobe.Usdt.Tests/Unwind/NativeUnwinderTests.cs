using Pyprobe.Usdt.Unwind;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Unwind;

/// <summary>
/// Unwinds the stack a real process captured in its leaf function (Support/unwind_chain.c) with the module map of that
/// still-running process, for each of -O2 -fomit-frame-pointer (rsp-based CFAs, and an rbp-based one for the VLA in
/// middle) and -O0 (rbp-based), PIE and not.
/// </summary>
public class NativeUnwinderTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string> Builds => new()
    {
        { "-O2 -fomit-frame-pointer", "-pie" },
        { "-O2 -fomit-frame-pointer", "-no-pie" },
        { "-O0", "-pie" },
        { "-O0", "-no-pie" },
    };

    private UnwindChainProgram? Start(string optimisation, string pie)
    {
        var name = "chain" + string.Concat((optimisation + pie).Where(char.IsLetterOrDigit));
        if (UnwindChainProgram.Compile(_dir.Path, name, output, [.. optimisation.Split(' '), pie]) is not { } exe) return null;
        return UnwindChainProgram.Run(exe);
    }

    private List<string> Names(NativeModules modules, NativeUnwind unwind)
    {
        var names = unwind.ProgramCounters.Select((pc, i) => NativeSymbolizer.Describe(modules, pc, isReturnAddress: i > 0)).ToList();
        output.WriteLine($"{string.Join(" <- ", names)} ({unwind.Stop})");
        return names;
    }

    [Theory]
    [MemberData(nameof(Builds))]
    public void LeafStack_UnwindsToStart(string optimisation, string pie)
    {
        using var program = Start(optimisation, pie);
        if (program is null) return;
        var modules = NativeModules.ForProcess(program.Pid);
        var unwind = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 64);
        var names = Names(modules, unwind);
        // Below main, glibc 2.34+'s __libc_start_call_main (static: not in libc's .dynsym, so file+offset, unless libc's
        // debug file is installed), then __libc_start_main (exported) and the executable's _start, whose CIE marks the
        // return address undefined.
        Assert.Equal(["inner", "middle", "outer", "main"], names.Take(4));
        var libc = modules.Modules.First(m => Path.GetFileName(m.Path) == "libc.so.6");
        if (DebugSymbolFiles.SeparateDebugFile(libc.Elf) is null) Assert.Matches("^libc\\.so\\.6\\+0x[0-9a-f]+$", names[4]);
        else Assert.Equal("__libc_start_call_main", names[4]);
        Assert.Equal(["__libc_start_main", "_start"], names.Skip(5));
        Assert.Equal(NativeUnwindStop.Complete, unwind.Stop);
        // The rules the walk went through: at -O2 the leaf's CFA is rsp-based and middle's (with its array) rbp-based;
        // at -O0 every function's body is rbp-based.
        Assert.Equal(optimisation == "-O0" ? [DwarfRegister.Rbp, DwarfRegister.Rbp] : [DwarfRegister.Rsp, DwarfRegister.Rbp],
            unwind.ProgramCounters.Take(2).Select((pc, i) => CfaRegisterAt(modules, i == 0 ? pc : pc - 1)));
        Assert.Contains(modules.Modules, m => m.Path == "[vdso]" && m.Frames is { Count: > 0 });
        if (pie == "-no-pie") Assert.Equal(0UL, modules.Modules.Single(m => m.Path == program.Path).Bias);
    }

    private static int CfaRegisterAt(NativeModules modules, ulong address)
    {
        Assert.True(modules.TryLocate(address, out var module, out var vaddr));
        Assert.True(module.Frames!.TryFindRow(vaddr, out var row));
        Assert.Equal(CfaKind.Register, row.Cfa);
        return row.CfaRegister;
    }

    [Theory]
    [MemberData(nameof(Builds))]
    public void ShortCopy_StopsOutsideCopy(string optimisation, string pie)
    {
        using var program = Start(optimisation, pie);
        if (program is null) return;
        var modules = NativeModules.ForProcess(program.Pid);
        var full = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 64);
        var unwind = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack.AsSpan(0, 200), modules, 64);
        Assert.Equal(NativeUnwindStop.OutsideCopy, unwind.Stop);
        // The frames whose saved values lie in the first 200 bytes, as in the full unwind. How many follows from this
        // gcc's frame sizes (seen by running it): at -O2 the address main returns to is within the 200 bytes and the
        // next is not; at -O0, where locals live in the frames, already the address outer returns to is beyond.
        Assert.Equal(full.ProgramCounters.Take(optimisation == "-O0" ? 3 : 5), unwind.ProgramCounters);
        Names(modules, unwind);
    }

    [Fact]
    public void Stops_SayWhy()
    {
        using var program = Start("-O2 -fomit-frame-pointer", "-no-pie");
        if (program is null) return;
        var modules = NativeModules.ForProcess(program.Pid);
        var full = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 64);

        var limited = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 2);
        Assert.Equal(NativeUnwindStop.MaxFrames, limited.Stop);
        Assert.Equal(full.ProgramCounters.Take(2), limited.ProgramCounters);

        // The leaf's return address (at rsp: its CFA is rsp + 8) zeroed, then pointed at data.
        var zeroed = program.Stack.ToArray();
        BitConverter.TryWriteBytes(zeroed.AsSpan(0, 8), 0UL);
        var bad = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, zeroed, modules, 64);
        Assert.Equal(NativeUnwindStop.BadAddress, bad.Stop);
        Assert.Equal([program.Ip], bad.ProgramCounters);
        BitConverter.TryWriteBytes(zeroed.AsSpan(0, 8), program.Sp);
        Assert.Equal(NativeUnwindStop.BadAddress, NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, zeroed, modules, 64).Stop);

        // An ip in no mapping at all (as a sampler may see in JIT code).
        var nowhere = NativeUnwinder.Unwind(0x1000, program.Sp, program.Bp, program.Stack, modules, 64);
        Assert.Equal(NativeUnwindStop.NoModule, nowhere.Stop);
        Assert.Equal([0x1000UL], nowhere.ProgramCounters);
    }

    /// <summary>
    /// In a lazy-binding PLT entry the CFA is rsp + 8 until the entry has pushed its relocation index (offset 11 of
    /// the 16 bytes), rsp + 16 after: a sample at each point, with the stack as it would be, finds the caller.
    /// </summary>
    [Theory]
    [InlineData(0, new ulong[0])]
    [InlineData(11, new ulong[] { 1 })]
    public void PltEntry_UsesTheExpressionRule(int offsetInEntry, ulong[] pushed)
    {
        using var program = Start("-O2 -fomit-frame-pointer", "-no-pie");
        if (program is null) return;
        var modules = NativeModules.ForProcess(program.Pid);
        var main = NativeUnwinder.Unwind(program.Ip, program.Sp, program.Bp, program.Stack, modules, 64).ProgramCounters[3];
        var plt = Pyprobe.Usdt.Elf.ElfImage.Open(program.Path).FindSection(".plt")!;
        var ip = plt.Address + 16 + (ulong)offsetInEntry; // the first entry after the resolver's
        var stack = pushed.Append(main).SelectMany(BitConverter.GetBytes).ToArray();
        var unwind = NativeUnwinder.Unwind(ip, program.Sp, program.Bp, stack, modules, 64);
        Assert.True(modules.TryLocate(ip, out var module, out var vaddr) && module.Frames!.TryFindRow(vaddr, out var row) && row.Cfa == CfaKind.PltExpression);
        // main's own frame needs more of the stack than the return address the copy ends with.
        Assert.Equal(NativeUnwindStop.OutsideCopy, unwind.Stop);
        Assert.Equal([ip, main], unwind.ProgramCounters);
        Assert.Equal("main", NativeSymbolizer.Describe(modules, main, isReturnAddress: true));
    }
}
