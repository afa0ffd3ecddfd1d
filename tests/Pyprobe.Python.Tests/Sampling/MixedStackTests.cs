using Pyprobe.Python.Profiling;
using Pyprobe.Python.Sampling;

namespace Pyprobe.Python.Tests.Sampling;

/// <summary>How a sample's Python frames go into its native stack (<c>record --native</c>): the placement rules, frame by frame.</summary>
public class MixedStackTests
{
    private static StackFrame Py(string name) => StackFrame.Python(name, "app.py", 1);
    private static NativeFrame Eval => new(StackFrame.Native("_PyEval_EvalFrameDefault", "python3.12"), NativeFrameRole.EvalLoop);
    private static NativeFrame Interp(string name) => new(StackFrame.Native(name, "python3.12"), NativeFrameRole.Interpreter);
    private static NativeFrame Lib(string name, string file) => new(StackFrame.Native(name, file), NativeFrameRole.Other);

    private static string[] Merge(StackFrame[] python, bool[] startsRun, NativeFrame[] native, bool paired = true, bool reachedEnd = false)
    {
        var merged = new List<StackFrame>();
        Assert.Equal(paired, MixedStack.Merge(python, startsRun, native, merged, reachedEnd));
        return merged.Select(f => f.Function).ToArray();
    }

    [Fact]
    public void ALibraryCallSitsUnderThePythonLineThatMadeItAndTheInterpretersStartIsLeftOut()
    {
        // 3.12: compress() called from main() in one run of the eval loop; zlib_compress (the interpreter's, Debian
        // builds zlib in) called deflate.
        var merged = Merge([Py("compress"), Py("main"), Py("<module>")], [false, false, true],
            [Lib("longest_match", "libz.so.1"), Lib("deflate", "libz.so.1"), Interp("zlib_compress"), Interp("cfunction_vectorcall_FASTCALL"),
             Eval, Interp("PyEval_EvalCode"), Interp("pymain_run_file"), Interp("Py_RunMain"), Lib("__libc_start_main", "libc.so.6"), Lib("_start", "python3.12")]);
        Assert.Equal(["longest_match", "deflate", "zlib_compress", "cfunction_vectorcall_FASTCALL", "compress", "main", "<module>"], merged);
    }

    [Fact]
    public void APythonCallbackSitsUnderTheExtensionThatCalledItWithoutTheInterpretersCallMachinery()
    {
        // hook() runs in its own run of the loop, entered from _json's scanner, which raw_decode() called.
        var merged = Merge([Py("hook"), Py("raw_decode"), Py("loads"), Py("<module>")], [true, false, false, true],
            [Interp("PyNumber_Add"), Eval, Interp("_PyFunction_Vectorcall"), Interp("PyObject_Call"),
             Lib("_parse_object_unicode", "_json.so"), Lib("scan_once_unicode", "_json.so"), Interp("_PyObject_MakeTpCall"), Eval, Interp("PyEval_EvalCode")]);
        Assert.Equal(["PyNumber_Add", "hook", "_parse_object_unicode", "scan_once_unicode", "raw_decode", "loads", "<module>"], merged);
    }

    [Fact]
    public void UpTo310EveryPythonFrameIsARunOfTheLoopOfItsOwn()
    {
        var merged = Merge([Py("leaf"), Py("mid"), Py("<module>")], [true, true, true],
            [Eval, Interp("function_code_fastcall"), Eval, Interp("_PyFunction_Vectorcall"), Eval, Interp("PyRun_FileExFlags")]);
        Assert.Equal(["leaf", "mid", "<module>"], merged);
    }

    [Fact]
    public void PythonFramesTheUnwindingDidNotReachStayOnTheOutside()
    {
        // The stack copy ended inside the second run: its frames, and the outer run's, are kept as the walk saw them.
        var merged = Merge([Py("inner"), Py("cb"), Py("outer"), Py("<module>")], [false, true, false, true],
            [Lib("memcpy", "libc.so.6"), Eval, Lib("call_back", "ext.so")]);
        Assert.Equal(["memcpy", "inner", "cb", "call_back", "outer", "<module>"], merged);
    }

    [Fact]
    public void WithoutAnEvalLoopFrameTheNativeFramesAreTheLeafAndEveryPythonFrameFollows()
    {
        var merged = Merge([Py("work"), Py("<module>")], [false, true], [Lib("poll", "libc.so.6"), Lib("wait_for", "ext.so")]);
        Assert.Equal(["poll", "wait_for", "work", "<module>"], merged);
    }

    [Fact]
    public void StacksThatDoNotPairUpKeepTheirPythonFramesWholeWithTheInnermostCFrames()
    {
        // Taken as hook() returned: its frame is gone from the Python stack, its run of the loop not yet from the native one.
        var merged = Merge([Py("raw_decode"), Py("<module>")], [false, true],
            [Interp("_PyEval_EvalFrameDefault_exit"), Eval, Interp("PyObject_Call"), Lib("scan_once_unicode", "_json.so"), Eval, Lib("_start", "python3.12")],
            paired: false);
        Assert.Equal(["_PyEval_EvalFrameDefault_exit", "raw_decode", "<module>"], merged);
        // Unwound to its end with fewer loop frames than runs: a loop frame was not recognised.
        merged = Merge([Py("cb"), Py("<module>")], [true, true], [Lib("memcpy", "libc.so.6"), Eval, Lib("_start", "python3.12")], paired: false, reachedEnd: true);
        Assert.Equal(["memcpy", "cb", "<module>"], merged);
    }
}
