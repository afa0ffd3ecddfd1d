using Pyprobe.Python.Runtime;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// _Py_DebugOffsets parsed from the .PyRuntime section of the Debian 3.13/3.14/3.15 binaries,
/// against values established independently (cpython.md §3.1 table, the pyenv 3.13.0 header compile
/// and the eval-frame hook displacements measured in cpython.md §7).
/// </summary>
public sealed class DebugOffsetsTests
{
    // version hex, interpreters_head, threads_head, thread_id, native_thread_id, owner, co_code_adaptive, tuple ob_item, hook
    public static TheoryData<string, ulong, int, int, int, int, int, int, int, int> Debian => new()
    {
        { "3.13", 0x030d05f0, 632, 7344, 152, 160, 70, 200, 24, 0x2118 },
        { "3.14", 0x030e0af0, 808, 7344, 152, 160, 74, 208, 32, 0x2148 },
        { "3.15", 0x030f02f0, 936, 7336, 176, 184, 74, 208, 32, 0x2118 },
    };

    [Theory]
    [MemberData(nameof(Debian))]
    public void Debian_binary_layout_matches_known_values(string minor, ulong hex, int interpreters, int threads, int threadId, int native, int owner, int adaptive, int tupleItems, int hook)
    {
        var cached = CachedPythons.Get(minor);
        Requirements.EnsureFile(cached.Binary);
        var binary = CPythonBinary.Open(cached.Binary);
        var offsets = binary.DebugOffsets!;
        Assert.Equal(Pyprobe.Python.Versions.PythonVersion.FromHex(hex), offsets.Version);
        Assert.False(offsets.FreeThreaded);
        Assert.False(binary.Build.SharedLibrary);
        Assert.False(binary.Build.Debug);
        Assert.Equal(minor == "3.15", binary.Build.JitCapable);

        var l = binary.Layout;
        Assert.Equal(interpreters, l.Runtime.InterpretersHead);
        Assert.Equal(threads, l.Interpreter.ThreadsHead);
        Assert.Equal((72, threadId, native), (l.ThreadState.TopFrame, l.ThreadState.ThreadId, l.ThreadState.NativeThreadId ?? -1));
        Assert.Equal((0, 8, 56, owner), (l.Frame.Code, l.Frame.Previous, l.Frame.Position, l.Frame.Owner ?? -1));
        Assert.Equal((112, 120, 128, 136, 68, adaptive), (l.Code.Filename, l.Code.Name, l.Code.Qualname ?? -1, l.Code.LineTable, l.Code.FirstLineNo, l.Code.CodeAdaptive ?? -1));
        Assert.Equal((40, 56), (l.Str.AsciiData, l.Str.CompactData));
        Assert.Equal(tupleItems, l.Objects.TupleItems);
        Assert.Equal(minor == "3.13" ? 0UL : 3UL, l.Frame.CodeTagMask);
        Assert.Equal(hook, binary.EvalFrameHookOffset);
        // Static executables read _Py_tss_tstate with mov %fs:disp,%rax.
        Assert.IsType<ThreadStateTls.FsRelative>(binary.ThreadStateTls);
        // Fields present in every version's struct, checked where the values are plain facts.
        Assert.Equal(8UL, offsets["pyobject.ob_type"]);
        Assert.Equal(24UL, offsets["type_object.tp_name"]);
        Assert.Equal(32UL, offsets["bytes_object.ob_sval"]);
        Assert.Equal(16UL, offsets["float_object.ob_fval"]);
        Assert.Equal(24UL, offsets["long_object.ob_digit"]);
        Assert.Equal(24UL, offsets["list_object.ob_item"]);
        Assert.Equal(32UL, offsets["unicode_object.state"]);
        // What thread names are read with (NamespaceLayout): sys.modules, dicts, type fields, a class's shared keys.
        var facts = CPythonFacts.For(offsets.Version)!;
        Assert.Equal(offsets["interpreter_state.imports_modules"], (ulong)l.Interpreter.Modules);
        Assert.Equal(((ulong)NamespaceLayout.DictKeys, (ulong)NamespaceLayout.DictValues, (ulong)NamespaceLayout.TypeFlags),
            (offsets["dict_object.ma_keys"], offsets["dict_object.ma_values"], offsets["type_object.tp_flags"]));
        Assert.Equal(offsets["type_object.size"] + 464, (ulong)facts.Namespaces.HeapTypeCachedKeys!.Value);
        if (minor == "3.15")
        {
            Assert.Equal(offsets["heap_type_object.ht_cached_keys"], (ulong)facts.Namespaces.HeapTypeCachedKeys!.Value);
            Assert.Equal(((ulong)NamespaceLayout.TypeBasicSize, (ulong)NamespaceLayout.TypeDictOffset), (offsets["type_object.tp_basicsize"], offsets["type_object.tp_dictoffset"]));
        }
    }

    [Fact]
    public void Pyenv_3_13_debug_offsets_agree_with_the_Debian_3_13_build()
    {
        var pyenv = CPythonBinary.Open(Interpreters.PyenvLibPython("3.13.0")).DebugOffsets!;
        var cached = CachedPythons.Get("3.13");
        Requirements.EnsureFile(cached.Binary);
        var debian = CPythonBinary.Open(cached.Binary).DebugOffsets!;
        // Same minor, same struct: every offset that does not depend on build options is equal.
        foreach (var name in new[] { "thread_state.current_frame", "thread_state.native_thread_id", "interpreter_frame.owner", "code_object.co_code_adaptive", "unicode_object.asciiobject_size", "interpreter_state.threads_head" })
            Assert.Equal(pyenv[name], debian[name]);
        Assert.Equal(DebugOffsets.FieldsOf(13)!.Count, pyenv.Fields.Count);
    }

    [Fact]
    public void Unknown_minor_version_is_a_one_line_error()
    {
        var data = new byte[DebugOffsets.MaxSize];
        "xdebugpy"u8.CopyTo(data);
        BitConverter.GetBytes(0x031000f0UL).CopyTo(data, 8);
        var e = Assert.Throws<UnsupportedRuntimeException>(() => DebugOffsets.Parse(data, "python3.16"));
        Assert.Contains("3.16", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
