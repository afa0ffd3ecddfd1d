using Pyprobe.Python.Runtime;
using Pyprobe.Python.Versions;

namespace Pyprobe.Python.Tests.Runtime;

/// <summary>
/// Every offset of the runtime model against the real headers: for each pyenv build a small C
/// program is compiled with Py_BUILD_CORE against include/python3.X/internal and prints offsetof()
/// and sizeof() of each field the model holds; the values must be equal. 3.8–3.12 check the tables,
/// 3.13 checks what the model read from the build's own _Py_DebugOffsets.
/// </summary>
public sealed class RuntimeLayoutHeaderTests
{
    public static TheoryData<string> PyenvBuilds => ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"];

    [Theory]
    [MemberData(nameof(PyenvBuilds))]
    public void Layout_equals_the_offsets_compiled_from_the_headers(string full)
    {
        var fromHeaders = CompileAndRun(full);
        var binary = CPythonBinary.Open(Interpreters.PyenvLibPython(full));
        Assert.Equal(Interpreters.Minor(full), $"{binary.Version.Major}.{binary.Version.Minor}");
        Assert.True(binary.Build.SharedLibrary);
        Assert.False(binary.Build.Debug);

        var model = binary.Layout.Fields().ToList();
        Assert.True(model.Count >= 29, $"only {model.Count} fields");
        foreach (var (name, value) in model)
        {
            Assert.True(fromHeaders.TryGetValue(name, out var expected), $"the C program did not print {name}");
            Assert.True(expected == value, $"{full} {name}: model {value}, headers {expected}");
        }
        // Table versions: the model's table must hold every field the headers have for them.
        var minor = binary.Version.Minor;
        if (minor <= 12) Assert.Equal(fromHeaders.Keys.Where(k => k != "interp.eval_frame" && !k.StartsWith("ns.", StringComparison.Ordinal)).Order(), model.Select(f => f.Key).Order());
        if (minor >= 11) Assert.Equal(fromHeaders["interp.eval_frame"], (long?)binary.EvalFrameHookOffset);
        else Assert.Null(binary.EvalFrameHookOffset);
        // The version-only facts agree with the binary's model.
        var facts = CPythonFacts.For(new PythonVersion(3, minor))!;
        Assert.Equal(binary.Layout.Str, facts.Str);
        Assert.Equal(binary.Layout.Objects, facts.Objects);
        // What thread names are read with: dicts, modules, types and the instances' shared keys.
        var ns = facts.Namespaces;
        // The shared keys are only needed from 3.11 (managed dicts); there they follow the type object and its five method tables.
        if (minor >= 11) Assert.Equal((fromHeaders["ns.ht_cached_keys"], fromHeaders["ns.type_size"] + 464), ((long)ns.HeapTypeCachedKeys!.Value, fromHeaders["ns.ht_cached_keys"]));
        else Assert.Null(ns.HeapTypeCachedKeys);
        Assert.Equal(
            (NamespaceLayout.DictKeys, NamespaceLayout.DictValues, NamespaceLayout.TypeBasicSize, NamespaceLayout.TypeFlags, NamespaceLayout.TypeDictOffset, NamespaceLayout.ModuleDict),
            ((int)fromHeaders["ns.ma_keys"], (int)fromHeaders["ns.ma_values"], (int)fromHeaders["ns.tp_basicsize"], (int)fromHeaders["ns.tp_flags"], (int)fromHeaders["ns.tp_dictoffset"], (int)fromHeaders["ns.md_dict"]));
        Assert.Equal(minor >= 11 ? DictKeysForm.Log2Indices : DictKeysForm.SizedIndices, ns.Keys);
        // Before 3.11 the keys object is private to dictobject.c (no header has it): PythonThreadNamesTests read real dicts.
        if (minor >= 11)
            Assert.Equal((8L, 9L, 10L, 24L, 32L), (fromHeaders["ns.dk_log2_size"], fromHeaders["ns.dk_log2_index_bytes"], fromHeaders["ns.dk_kind"], fromHeaders["ns.dk_nentries"], fromHeaders["ns.dk_indices"]));
        if (minor >= 13)
            Assert.Equal(((long)ns.SplitValues, (long)NamespaceLayout.InlineValuesValid), (fromHeaders["ns.values_values"], fromHeaders["ns.values_valid"]));
        else
            Assert.Equal(0, ns.SplitValues);
        Assert.Equal((long)NamespaceLayout.ManagedDictFlag, fromHeaders["ns.managed_dict_flag"]);
        if (minor >= 13) Assert.Equal((long)NamespaceLayout.InlineValuesFlag, fromHeaders["ns.inline_values_flag"]);
    }

    private static Dictionary<string, long> CompileAndRun(string full)
    {
        var home = Interpreters.PyenvHome(full);
        var minor = int.Parse(full.Split('.')[1]);
        var include = Path.Combine(home, "include", $"python3.{minor}");
        var dir = Directory.CreateTempSubdirectory("pyprobe-offsets-");
        try
        {
            var source = Path.Combine(dir.FullName, "offsets.c");
            var exe = Path.Combine(dir.FullName, "offsets");
            File.WriteAllText(source, CSource(minor));
            if (!File.Exists("/usr/bin/gcc")) Assert.Fail("gcc is missing: apt-get install gcc");
            Interpreters.Run("/usr/bin/gcc", "-DPy_BUILD_CORE", "-I", include, "-I", Path.Combine(include, "internal"), "-o", exe, source);
            return Interpreters.Run(exe).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split('=')).ToDictionary(p => p[0], p => long.Parse(p[1]));
        }
        finally { dir.Delete(recursive: true); }
    }

    private static string CSource(int minor) => $$"""
        #define MINOR {{minor}}
        #include <stddef.h>
        #include <stdio.h>
        #include "Python.h"
        #if MINOR == 8
        #include "pycore_pystate.h"
        #else
        #include "pycore_runtime.h"
        #include "pycore_interp.h"
        #endif
        #if MINOR >= 11
        #include "pycore_dict.h"
        #include "pycore_moduleobject.h"
        #endif
        #if MINOR >= 11
        #include "pycore_frame.h"
        #else
        #include "frameobject.h"
        #endif
        #define P(name, expr) printf("%s=%ld\n", name, (long)(expr))
        int main(void) {
          P("runtime.interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
        #if MINOR <= 11
          P("runtime.gil_holder", offsetof(_PyRuntimeState, gilstate.tstate_current));
          P("runtime.tss_key", offsetof(_PyRuntimeState, gilstate.autoTSSkey) + offsetof(Py_tss_t, _key));
        #else
          P("runtime.tss_key", offsetof(_PyRuntimeState, autoTSSkey) + offsetof(Py_tss_t, _key));
        #endif
          P("interp.next", offsetof(PyInterpreterState, next));
        #if MINOR <= 11
          P("interp.modules", offsetof(PyInterpreterState, modules));
        #else
          P("interp.modules", offsetof(PyInterpreterState, imports.modules));
        #endif
          P("ns.ma_keys", offsetof(PyDictObject, ma_keys));
          P("ns.ma_values", offsetof(PyDictObject, ma_values));
          P("ns.type_size", sizeof(PyTypeObject));
          P("ns.tp_basicsize", offsetof(PyTypeObject, tp_basicsize));
          P("ns.tp_flags", offsetof(PyTypeObject, tp_flags));
          P("ns.tp_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
          P("ns.ht_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));
        #if MINOR >= 11
          P("ns.dk_log2_size", offsetof(PyDictKeysObject, dk_log2_size));
          P("ns.dk_log2_index_bytes", offsetof(PyDictKeysObject, dk_log2_index_bytes));
          P("ns.dk_kind", offsetof(PyDictKeysObject, dk_kind));
          P("ns.dk_nentries", offsetof(PyDictKeysObject, dk_nentries));
          P("ns.dk_indices", offsetof(PyDictKeysObject, dk_indices));
          P("ns.md_dict", offsetof(PyModuleObject, md_dict));
          P("ns.managed_dict_flag", Py_TPFLAGS_MANAGED_DICT);
        #else
          P("ns.md_dict", 16); /* PyModuleObject is private to moduleobject.c before 3.11: {PyObject_HEAD; PyObject *md_dict; ...} */
          P("ns.managed_dict_flag", 1 << 4); /* no managed dicts: the flag is only checked from 3.11 */
        #endif
        #if MINOR >= 13
          P("ns.values_values", offsetof(PyDictValues, values));
          P("ns.values_valid", offsetof(PyDictValues, valid));
          P("ns.inline_values_flag", Py_TPFLAGS_INLINE_VALUES);
        #endif
        #if MINOR <= 10
          P("interp.threads_head", offsetof(PyInterpreterState, tstate_head));
        #else
          P("interp.threads_head", offsetof(PyInterpreterState, threads.head));
          P("interp.eval_frame", offsetof(PyInterpreterState, eval_frame));
        #endif
          P("tstate.next", offsetof(PyThreadState, next));
          P("tstate.interp", offsetof(PyThreadState, interp));
          P("tstate.thread_id", offsetof(PyThreadState, thread_id));
        #if MINOR >= 12
          P("interp.ceval_gil", offsetof(PyInterpreterState, ceval.gil));
          P("gil.last_holder", offsetof(struct _gil_runtime_state, last_holder));
          P("gil.locked", offsetof(struct _gil_runtime_state, locked));
        #endif
        #if MINOR >= 11
          P("tstate.native_thread_id", offsetof(PyThreadState, native_thread_id));
        #endif
        #if MINOR <= 10
          P("tstate.top_frame", offsetof(PyThreadState, frame));
          P("frame.previous", offsetof(PyFrameObject, f_back));
          P("frame.code", offsetof(PyFrameObject, f_code));
          P("frame.position", offsetof(PyFrameObject, f_lasti));
        #elif MINOR <= 12
          P("tstate.top_frame", offsetof(PyThreadState, cframe));
          P("cframe.current_frame", offsetof(_PyCFrame, current_frame));
          P("frame.previous", offsetof(_PyInterpreterFrame, previous));
          P("frame.code", offsetof(_PyInterpreterFrame, f_code));
          P("frame.position", offsetof(_PyInterpreterFrame, prev_instr));
          P("frame.owner", offsetof(_PyInterpreterFrame, owner));
          P("frame.size", sizeof(_PyInterpreterFrame));
        #else
          P("tstate.top_frame", offsetof(PyThreadState, current_frame));
          P("frame.previous", offsetof(_PyInterpreterFrame, previous));
          P("frame.code", offsetof(_PyInterpreterFrame, f_executable));
          P("frame.position", offsetof(_PyInterpreterFrame, instr_ptr));
          P("frame.owner", offsetof(_PyInterpreterFrame, owner));
          P("frame.size", sizeof(_PyInterpreterFrame));
        #endif
        #if MINOR == 11
          P("frame.is_entry", offsetof(_PyInterpreterFrame, is_entry));
        #endif
          P("code.filename", offsetof(PyCodeObject, co_filename));
          P("code.name", offsetof(PyCodeObject, co_name));
        #if MINOR >= 11
          P("code.qualname", offsetof(PyCodeObject, co_qualname));
          P("code.code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
        #else
          P("code.code", offsetof(PyCodeObject, co_code));
        #endif
          P("code.firstlineno", offsetof(PyCodeObject, co_firstlineno));
          P("code.argcount", offsetof(PyCodeObject, co_argcount));
          P("code.kwonlyargcount", offsetof(PyCodeObject, co_kwonlyargcount));
          P("code.flags", offsetof(PyCodeObject, co_flags));
        #if MINOR <= 10
          P("frame.localsplus", offsetof(PyFrameObject, f_localsplus));
          P("code.localsplusnames", offsetof(PyCodeObject, co_varnames));
          P("code.cellvars", offsetof(PyCodeObject, co_cellvars));
          P("code.freevars", offsetof(PyCodeObject, co_freevars));
        #else
          P("frame.localsplus", offsetof(_PyInterpreterFrame, localsplus));
          P("code.localsplusnames", offsetof(PyCodeObject, co_localsplusnames));
          P("code.localspluskinds", offsetof(PyCodeObject, co_localspluskinds));
        #endif
        #if MINOR <= 9
          P("code.linetable", offsetof(PyCodeObject, co_lnotab));
        #else
          P("code.linetable", offsetof(PyCodeObject, co_linetable));
        #endif
          P("str.length", offsetof(PyASCIIObject, length));
          P("str.hash", offsetof(PyASCIIObject, hash));
          P("str.state", offsetof(PyASCIIObject, state));
          P("str.ascii_data", sizeof(PyASCIIObject));
          P("str.compact_data", sizeof(PyCompactUnicodeObject));
          P("object.ob_type", offsetof(PyObject, ob_type));
          P("object.ob_size", offsetof(PyVarObject, ob_size));
          P("bytes.ob_sval", offsetof(PyBytesObject, ob_sval));
          P("float.ob_fval", offsetof(PyFloatObject, ob_fval));
        #if MINOR <= 11
          P("long.ob_digit", offsetof(PyLongObject, ob_digit));
        #else
          P("long.ob_digit", offsetof(PyLongObject, long_value.ob_digit));
        #endif
          P("tuple.ob_item", offsetof(PyTupleObject, ob_item));
          P("list.ob_item", offsetof(PyListObject, ob_item));
          P("type.tp_name", offsetof(PyTypeObject, tp_name));
          return 0;
        }
        """;
}
