using System.Diagnostics;
using Pyprobe.Usdt.Demangle;
using Pyprobe.Usdt.Elf;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Demangle;

/// <summary>
/// The demangler against binutils' c++filt on every C++ symbol real libraries export: whatever pyprobe demangles must be
/// c++filt's text exactly (with parameters, and without as <c>c++filt -p</c>); what it leaves mangled is counted and
/// must stay rare.
/// </summary>
public class CxxDemanglerTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("_Z3fooIiEiT_", "int foo<int>(int)", "foo<int>")]
    [InlineData("_ZNK1A1fEv", "A::f() const", "A::f")]
    [InlineData("_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int, std::allocator<int> >::push_back(int const&)", "std::vector<int, std::allocator<int> >::push_back")]
    [InlineData("_ZN1A1fEPFviE", "A::f(void (*)(int))", "A::f")]
    [InlineData("_Z1fPA3_i", "f(int (*) [3])", "f")]
    [InlineData("_Z1fRA3_i", "f(int (&) [3])", "f")]
    [InlineData("_ZZ3foovENKUlvE_clEv", "foo()::{lambda()#1}::operator()() const", "foo()::{lambda()#1}::operator()")]
    [InlineData("_Z3fooILi5EEvv", "void foo<5>()", "foo<5>")]
    [InlineData("_Z1fM1AFviE", "f(void (A::*)(int))", "f")]
    [InlineData("_Z3foov.cold", "foo() [clone .cold]", "foo")]
    [InlineData("_Z3foov.constprop.0.isra.0", "foo() [clone .constprop.0] [clone .isra.0]", "foo")]
    [InlineData("_ZN12_GLOBAL__N_13barEv", "(anonymous namespace)::bar()", "(anonymous namespace)::bar")]
    [InlineData("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEC2EPKcRKS3_",
        "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string(char const*, std::allocator<char> const&)",
        "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string")]
    [InlineData("_Z1fPrVKi", "f(int const volatile restrict*)", "f")]
    [InlineData("_ZNVKR1A1fEv", "A::f() const volatile &", "A::f")]
    [InlineData("_Z1fSs", "f(std::basic_string<char, std::char_traits<char>, std::allocator<char> >)", "f")]
    [InlineData("_ZSt4cout", "std::cout", "std::cout")]
    [InlineData("_Z1fIJiiEEvDpT_", "void f<int, int>(int, int)", "f<int, int>")]
    [InlineData("_Z1fIJEEvDpT_", "void f<>()", "f<>")]
    [InlineData("_Z1fILb1ELj5ELm5ELc65ELin5EEvv", "void f<true, 5u, 5ul, (char)65, -5>()", "f<true, 5u, 5ul, (char)65, -5>")]
    [InlineData("_ZThn8_N1A1fEv", "non-virtual thunk to A::f()", "non-virtual thunk to A::f()")]
    [InlineData("_ZTv0_n24_N1AD0Ev", "virtual thunk to A::~A()", "virtual thunk to A::~A()")]
    [InlineData("_ZTC1A8_1B", "construction vtable for B-in-A", "construction vtable for B-in-A")]
    [InlineData("_ZGVZ3foovE1x", "guard variable for foo()::x", "guard variable for foo()::x")]
    [InlineData("_ZL3barv", "bar()", "bar")]
    [InlineData("_ZZ3foovE1x_0", "foo()::x", "foo()::x")]
    [InlineData("_Z1fDv4_i", "f(int __vector(4))", "f")]
    [InlineData("_ZN1AcviEv", "A::operator int()", "A::operator int")]
    [InlineData("_ZN1AltIiEEbv", "bool A::operator< <int>()", "A::operator< <int>")]
    [InlineData("_Z3fooIZ3barvEUlvE_EvT_", "void foo<bar()::{lambda()#1}>(bar()::{lambda()#1})", "foo<bar()::{lambda()#1}>")]
    [InlineData("_Z1fPKFviE", "f(void (*)(int) const)", "f")]
    [InlineData("_ZN4llvm10checkedAddIiEENSt9enable_ifIXsr3std9is_signedIT_EE5valueENS_8OptionalIS2_EEE4typeES2_S2_",
        "std::enable_if<std::is_signed<int>::value, llvm::Optional<int> >::type llvm::checkedAdd<int>(int, int)", "llvm::checkedAdd<int>")]
    [InlineData("_ZNSt8ios_base7failureB5cxx11C1EPKc", "std::ios_base::failure[abi:cxx11]::failure(char const*)", "std::ios_base::failure[abi:cxx11]::failure")]
    public void KnownNames_AreWrittenAsCxxfiltWritesThem(string mangled, string full, string withoutParameters)
    {
        Assert.Equal(full, CxxDemangler.Demangle(mangled));
        Assert.Equal(withoutParameters, CxxDemangler.WithoutParameters(mangled));
    }

    [Theory]
    [InlineData("main")]
    [InlineData("PyEval_EvalFrameDefault")]
    [InlineData("_Z")]
    [InlineData("_Z4foo")] // a name longer than the text
    [InlineData("_Z3foov.")] // not a clone suffix
    [InlineData("_Z3fooS5_")] // a substitution that was never made
    [InlineData("_ZN3fooIT_EEvv")] // a template parameter with no template around it
    public void NotACxxName_OrBroken_IsLeftAlone(string symbol)
    {
        Assert.Null(CxxDemangler.Demangle(symbol));
        Assert.Null(CxxDemangler.WithoutParameters(symbol));
    }

    [Fact]
    public void DeeplyNestedName_IsRefused_NotOverflowed()
    {
        var deep = "_Z1f" + string.Concat(Enumerable.Repeat("P", 5000)) + "i";
        Assert.Null(CxxDemangler.Demangle(deep));
    }

    // libstdc++ (the runtime's own dependency) and bpftrace's LLVM, built by gcc: tens of thousands of template-heavy
    // names; Chromium's helpers (the viewer tests' browser), built by clang against libc++.
    public static TheoryData<string> Libraries => new() { "libstdc++", "libLLVM", "chromium" };

    [Theory]
    [MemberData(nameof(Libraries))]
    public void EveryExportedSymbol_IsCxxfiltsText_OrLeftMangled(string library)
    {
        var paths = library switch
        {
            "libstdc++" => new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6" }.Where(File.Exists).ToArray(),
            "chromium" => new[] { "/usr/lib/chromium/chrome_crashpad_handler", "/usr/lib/chromium/libVkLayer_khronos_validation.so" }.Where(File.Exists).ToArray(),
            _ => Directory.Exists("/usr/lib/x86_64-linux-gnu") ? Directory.GetFiles("/usr/lib/x86_64-linux-gnu", "libLLVM-*.so.1") : [],
        };
        if (paths.Length == 0 || !File.Exists("/usr/bin/c++filt"))
        {
            TestPythons.Missing($"{library} or c++filt", output);
            return;
        }
        var files = paths.Select(p => new FileInfo(p).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? p).Distinct();
        foreach (var path in files.Order(StringComparer.Ordinal)) CompareWithCxxfilt(path);
    }

    private void CompareWithCxxfilt(string path)
    {
        var symbols = ElfImage.Open(path).Symbols.Where(s => s.Name.StartsWith("_Z", StringComparison.Ordinal))
            .Select(s => s.Name).Distinct().Order(StringComparer.Ordinal).ToList();
        var full = Cxxfilt(symbols, []);
        var bare = Cxxfilt(symbols, ["-p"]);
        var wrong = new List<string>();
        var left = new List<string>();
        for (var i = 0; i < symbols.Count; i++)
        {
            var ours = CxxDemangler.Demangle(symbols[i]);
            var oursBare = CxxDemangler.WithoutParameters(symbols[i]);
            if (ours is null)
            {
                if (full[i] != symbols[i]) left.Add(symbols[i]);
                Assert.Null(oursBare);
                continue;
            }
            if (ours != full[i]) wrong.Add($"{symbols[i]}\n  ours:     {ours}\n  c++filt:  {full[i]}");
            if (oursBare != bare[i]) wrong.Add($"{symbols[i]} (-p)\n  ours:     {oursBare}\n  c++filt:  {bare[i]}");
        }
        output.WriteLine($"{path}: {symbols.Count} C++ symbols, {symbols.Count - left.Count - wrong.Count} as c++filt, {left.Count} left mangled, {wrong.Count} wrong");
        foreach (var symbol in left.Take(30)) output.WriteLine($"left: {symbol}");
        Assert.True(symbols.Count > 1000, $"only {symbols.Count} C++ symbols in {path}");
        Assert.True(wrong.Count == 0, $"{wrong.Count} names differ from c++filt:\n{string.Join("\n", wrong.Take(20))}");
        // What stays mangled is rare: decltype expressions in return types (7 of LLVM 15's 39528 names).
        Assert.True(left.Count * 1000 <= symbols.Count, $"{left.Count} of {symbols.Count} left mangled:\n{string.Join("\n", left.Take(20))}");
    }

    private static List<string> Cxxfilt(List<string> symbols, string[] arguments)
    {
        var psi = new ProcessStartInfo("/usr/bin/c++filt", arguments)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(psi)!;
        var writer = Task.Run(() =>
        {
            foreach (var symbol in symbols) process.StandardInput.WriteLine(symbol);
            process.StandardInput.Close();
        });
        var lines = new List<string>();
        while (process.StandardOutput.ReadLine() is { } line) lines.Add(line);
        writer.Wait();
        process.WaitForExit();
        Assert.Equal(symbols.Count, lines.Count);
        return lines;
    }
}
