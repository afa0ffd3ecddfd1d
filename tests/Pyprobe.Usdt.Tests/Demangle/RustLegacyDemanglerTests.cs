using System.Diagnostics;
using Pyprobe.Usdt.Demangle;
using Xunit.Abstractions;

namespace Pyprobe.Usdt.Tests.Demangle;

/// <summary>
/// Legacy Rust names (what PyO3 extension modules carry) against binutils' c++filt, which knows them too: pyprobe writes
/// c++filt's path without the trailing hash. The names are built here from the paths rustc mangles (part lengths
/// counted, a hash appended), escapes and all.
/// </summary>
public class RustLegacyDemanglerTests(ITestOutputHelper output)
{
    private const string Hash = "h9f86d081884c7d65";

    public static TheoryData<string[], string> Paths => new()
    {
        { ["core", "fmt", "write"], "core::fmt::write" },
        { ["pyo3", "gil", "GILGuard", "acquire"], "pyo3::gil::GILGuard::acquire" },
        { ["_$LT$alloc..vec..Vec$LT$T$GT$$u20$as$u20$core..ops..drop..Drop$GT$", "drop"], "<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop" },
        { ["core", "ptr", "drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$"],
            "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>" },
        { ["_$LT$$RF$T$u20$as$u20$core..fmt..Display$GT$", "fmt"], "<&T as core::fmt::Display>::fmt" },
        { ["hashbrown", "raw", "RawTable$LT$T$C$A$GT$", "reserve_rehash"], "hashbrown::raw::RawTable<T,A>::reserve_rehash" },
        { ["_$LT$$BP$const$u20$T$u20$as$u20$core..fmt..Pointer$GT$", "fmt"], "<*const T as core::fmt::Pointer>::fmt" },
        { ["pydantic_core", "validators", "model", "_$LT$impl$u20$pydantic_core..validators..Validator$u20$for$u20$pydantic_core..validators..model..ModelValidator$GT$", "validate"],
            "pydantic_core::validators::model::<impl pydantic_core::validators::Validator for pydantic_core::validators::model::ModelValidator>::validate" },
        { ["std", "sys_common", "backtrace", "__rust_end_short_backtrace"], "std::sys_common::backtrace::__rust_end_short_backtrace" },
    };

    private static string Mangle(string[] parts, string suffix = "") =>
        "_ZN" + string.Concat(parts.Select(p => $"{p.Length}{p}")) + $"{Hash.Length}{Hash}E" + suffix;

    [Theory]
    [MemberData(nameof(Paths))]
    public void LegacyName_IsCxxfiltsPath_WithoutTheHash(string[] parts, string path)
    {
        var mangled = Mangle(parts);
        Assert.Equal(path, RustLegacyDemangler.Demangle(mangled));
        Assert.Equal(path, SymbolNames.Readable(mangled));
        Assert.Equal(path, SymbolNames.Readable(Mangle(parts, ".llvm.12345")));
        if (!File.Exists("/usr/bin/c++filt"))
        {
            TestPythons.Missing("c++filt", output);
            return;
        }
        using var cxxfilt = Process.Start(new ProcessStartInfo("/usr/bin/c++filt", [mangled]) { RedirectStandardOutput = true })!;
        var theirs = cxxfilt.StandardOutput.ReadToEnd().TrimEnd('\n');
        cxxfilt.WaitForExit();
        Assert.Equal($"{path}::{Hash}", theirs);
    }

    [Theory]
    [InlineData("_ZN4core3fmt5write17h0000000000000000E")] // a hash of one digit: binutils takes it for C++
    [InlineData("_ZN4core3fmt5writeE")] // no hash
    [InlineData("_ZN4core3fmt5write17h9f86d081884c7d65Ev")] // a C++ function's parameters after the name
    [InlineData("_ZN4core5a$XX$17h9f86d081884c7d65E")] // an escape Rust does not make
    public void NotALegacyRustName_IsLeftToTheCxxDemangler(string symbol) => Assert.Null(RustLegacyDemangler.Demangle(symbol));

    [Fact]
    public void CNamesAndCxxNames_AreNamedAsBefore()
    {
        Assert.Equal("PyEval_EvalFrameDefault", SymbolNames.Readable("PyEval_EvalFrameDefault"));
        Assert.Equal("A::f", SymbolNames.Readable("_ZNK1A1fEv"));
        Assert.Equal("_Z4foo", SymbolNames.Readable("_Z4foo"));
    }
}
