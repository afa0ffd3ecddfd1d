using Pyprobe.Python.Processes;

namespace Pyprobe.Python.Sampling;

/// <summary>Turns a process's runtime model into the walk the kernel program follows.</summary>
public static class StackWalkConfigs
{
    /// <summary>Through the last field user space reads to name a frame (<see cref="Stacks.CodeObjectReader"/>), 8-aligned.</summary>
    private static uint CodeCopySize(CodeLayout code)
    {
        int[] ends = [PyObjectLayout.ObType + 8, (code.Qualname ?? code.Name) + 8, code.Filename + 8, code.LineTable + 8, code.FirstLineNo + 4];
        return (uint)((ends.Max() + 7) / 8 * 8);
    }

    /// <param name="gilState">Also tell whether each sampled thread holds the GIL (<see cref="StackSampleFlags.HoldsGil"/>).</param>
    public static StackWalkConfig For(CPythonProcess process, bool gilState = false)
    {
        var layout = process.Layout;
        var frame = layout.Frame;
        var positionIsPointer = frame.PositionKind is InstructionPosition.PreviousInstructionPointer or InstructionPosition.InstructionPointer;
        int[] ends = [frame.Code + 8, frame.Previous + 8, frame.Position + (positionIsPointer ? 8 : 4), (frame.Owner ?? 0) + 1, (frame.IsEntry ?? 0) + 1];
        var readSize = (ends.Max() + 7) / 8 * 8;
        if (positionIsPointer && layout.Code.CodeAdaptive is null)
            throw new UnsupportedRuntimeException($"CPython {process.Binary.Version}: frames point into co_code_adaptive, but its offset is unknown");
        var config = new StackWalkConfig
        {
            RuntimeAddress = process.RuntimeAddress,
            NoneAddress = frame.NoneCodeIsEntry && process.Binary.Symbols.NoneStruct is ulong none ? process.Address(none) : 0,
            CodeMask = ~frame.CodeTagMask,
            InterpretersHead = (uint)layout.Runtime.InterpretersHead,
            InterpreterNext = (uint)layout.Interpreter.Next,
            InterpreterThreadsHead = (uint)layout.Interpreter.ThreadsHead,
            ThreadNext = (uint)layout.ThreadState.Next,
            // 3.11+ keep the kernel's tid; before, only pthread_self(), which is the thread's fsbase on glibc.
            ThreadMatch = (uint)(layout.ThreadState.NativeThreadId ?? layout.ThreadState.ThreadId),
            MatchByFsBase = layout.ThreadState.NativeThreadId is null,
            // native_thread_id is the id inside the process's pid namespace; fsbase is the same seen from anywhere.
            PidNamespace = layout.ThreadState.NativeThreadId is null ? null : PidNamespace.Of(process.Pid),
            ThreadTopFrame = (uint)layout.ThreadState.TopFrame,
            CFrameCurrentFrame = layout.ThreadState.CFrameCurrentFrame is int current ? (uint)current : StackWalkConfig.Absent,
            FrameReadSize = (uint)readSize,
            FrameCode = (uint)frame.Code,
            FramePrevious = (uint)frame.Previous,
            FramePosition = (uint)frame.Position,
            PositionIsPointer = positionIsPointer,
            CodeAdaptive = (uint)(layout.Code.CodeAdaptive ?? 0),
            FrameOwner = frame.Owner is int owner && frame.FirstNonFrameOwner is not null ? (uint)owner : StackWalkConfig.Absent,
            OwnerSkipFrom = (uint)(frame.FirstNonFrameOwner ?? 256),
            FrameIsEntry = frame.IsEntry is int entry ? (uint)entry : StackWalkConfig.Absent,
            CodeFirstLineNo = (uint)layout.Code.FirstLineNo,
            CodeCopySize = CodeCopySize(layout.Code),
            CodeName = (uint)(layout.Code.Qualname ?? layout.Code.Name),
            CodeFilename = (uint)layout.Code.Filename,
            CodeLineTable = (uint)layout.Code.LineTable,
            CodeFlags = (uint)(CPythonFacts.For(process.Binary.Version)?.CodeFlagsOffset
                ?? throw new UnsupportedRuntimeException($"CPython {process.Binary.Version}: no facts for this version")),
        };
        return gilState ? WithGilState(config, process) : config;
    }

    /// <summary>Up to 3.11 one holder in the runtime; from 3.12 the GIL the thread's interpreter uses (<c>ceval.gil</c>): its last holder while locked.</summary>
    private static StackWalkConfig WithGilState(StackWalkConfig config, CPythonProcess process)
    {
        var layout = process.Layout;
        if (layout.Runtime.GilHolder is int holder)
            return config with { GilHolderAddress = process.RuntimeAddress + (ulong)holder };
        if (layout.Interpreter is { CevalGil: int gil, GilLastHolder: int last, GilLocked: int locked } && locked == last + 8)
            return config with { ThreadInterpreter = (uint)layout.ThreadState.Interp, InterpreterGil = (uint)gil, GilLastHolder = (uint)last };
        throw new UnsupportedRuntimeException($"CPython {process.Binary.Version}: where the GIL's holder is kept is not known");
    }
}
