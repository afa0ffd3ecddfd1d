using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// co_version (the eval-frame memo's identity of a code object) read from a live process at the runtime model's
/// offset: each new code object takes the interpreter's next version, so three made in a row by c.replace() (one code
/// object each, nothing else in between) must read v, v + 1, v + 2. That holds only at the right offset: the
/// neighbouring ints (co_nfreevars, co_framesize, ...) and pointers do not count up by one. 3.12 and pyenv 3.13 are also
/// checked against their headers (RuntimeLayoutHeaderTests); Debian's 3.13–3.15 have no headers, only this.
/// </summary>
public sealed class CodeVersionTests
{
    private const string Script = """
        def f(n):
            return n
        a = f.__code__.replace()
        b = a.replace()
        c = b.replace()
        print(id(a), id(b), id(c), flush=True)
        import sys
        sys.stdin.readline()
        """;

    public static TheoryData<string> WithVersion => ["pyenv:3.12.1", "pyenv:3.13.0", "debian:3.13", "debian:3.14", "debian:3.15"];

    [Theory]
    [MemberData(nameof(WithVersion))]
    public void Consecutive_code_objects_read_consecutive_versions(string interpreter)
    {
        Requirements.EnsureRoot();
        using var python = new ParkedPython(interpreter, Script);
        using var process = CPythonProcess.Attach(python.Pid);
        var offset = process.Layout.Code.Version ?? throw new Xunit.Sdk.XunitException($"{interpreter}: the model has no co_version");
        var versions = python.ReadyLine.Split(' ').Select(id => process.Memory.ReadU32(ulong.Parse(id) + (ulong)offset)).ToList();
        Assert.NotEqual(0u, versions[0]);
        Assert.Equal([versions[0], versions[0] + 1, versions[0] + 2], versions);
    }

    [Theory]
    [InlineData("pyenv:3.11.7")]
    [InlineData("debian:3.11")]
    public void Versions_without_co_version_have_none_in_the_model(string interpreter)
    {
        using var python = new ParkedPython(interpreter, Script);
        using var process = CPythonProcess.Attach(python.Pid);
        Assert.Null(process.Layout.Code.Version);
    }
}
