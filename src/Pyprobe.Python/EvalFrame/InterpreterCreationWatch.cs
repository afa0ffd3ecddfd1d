using Pyprobe.Python.Launching;
using Pyprobe.Python.Sessions;
using Pyprobe.Usdt.Elf;

namespace Pyprobe.Python.EvalFrame;

/// <summary>
/// The eval-frame hook of one process (<see cref="EvalFrameHook"/>) kept on every interpreter, including the
/// subinterpreters created after pyprobe attached: a new interpreter's hook is NULL, so calls in it would be inlined
/// and missed without a word. A return probe on the interpreter constructor (<c>_PyInterpreterState_New</c> on 3.13+,
/// which every path to a new interpreter goes through; <c>PyInterpreterState_New</c> before) stops the process when
/// the new interpreter is linked into the runtime's list and has run no code; the watch's thread then writes the hook
/// into it (only over NULL) and continues the process. The stop did not show next to the ~12 ms a pyenv 3.13 process
/// takes to make and destroy a subinterpreter (4×200 of each, alternated: 11.94 ms bare, 12.00 ms watched).
/// Disposing detaches the probe, continues a process still stopped here, and restores the hook in the interpreters
/// that still exist: nothing another link's closing needs, so it closes alongside the eval-frame probes (their grace
/// periods overlap; <see cref="LinkCloser"/>).
/// </summary>
public sealed class InterpreterCreationWatch : IClosesAlongside
{
    private readonly CPythonProcess _process;
    private readonly OwnedResources _owned;
    private readonly IUprobeLink _link;
    private readonly RingBufferReader _reader;
    private readonly Thread _thread;
    private readonly RecordHandler _onRecord;
    private volatile bool _stopping;
    private int _covered;

    private InterpreterCreationWatch(CPythonProcess process, OwnedResources owned, IUprobeLink link, RingBufferReader reader, EvalFrameHook hook)
    {
        _process = process;
        _owned = owned;
        _link = link;
        _reader = reader;
        Hook = hook;
        _onRecord = OnRecord;
        _thread = new Thread(Watch) { IsBackground = true, Name = $"pyprobe interpreters of {process.Pid}" };
    }

    /// <summary>The hook written at attach and into every interpreter created since.</summary>
    public EvalFrameHook Hook { get; }

    /// <summary>How many interpreters created after attaching got the hook.</summary>
    public int Covered => Volatile.Read(ref _covered);

    /// <summary>The constructor every new interpreter returns from, linked into the runtime's list.</summary>
    public static ElfSymbol CreationFunction(CPythonBinary binary) =>
        new[] { "_PyInterpreterState_New", "PyInterpreterState_New" }
            .Select(name => binary.Elf.FindSymbols(name).FirstOrDefault(s => s.IsFunction && s.IsDefined))
            .FirstOrDefault(s => s is not null)
        ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath} defines neither _PyInterpreterState_New nor PyInterpreterState_New: pyprobe cannot see its new interpreters");

    /// <summary>
    /// Arms the return probe, then writes the hook into every interpreter of <paramref name="pid"/> (in that order:
    /// an interpreter made in between is covered by the first stop), and starts watching.
    /// </summary>
    public static InterpreterCreationWatch Start(UprobeAttachMode mode, int pid)
    {
        var owned = new OwnedResources();
        try
        {
            var process = owned.Add(CPythonProcess.Attach(pid));
            var binary = process.Binary;
            var symbol = CreationFunction(binary);
            var offset = binary.Elf.TryVirtualAddressToFileOffset(symbol.Value, executable: true)
                ?? throw new UnsupportedRuntimeException($"{binary.DisplayPath}: {symbol.Name} is not in an executable segment");
            var ring = owned.Add(BpfMap.Create(MapSpec.RingBuffer(InterpreterCreationProgram.Ring, 4096)));
            var code = InterpreterCreationProgram.Generate(pid).BindMaps(new Dictionary<string, int> { [InterpreterCreationProgram.Ring] = ring.Fd.Value });
            var program = owned.Add(BpfProgram.Load(ProgramSpec.Of("pp_interp_new", ProgramType.Kprobe, code, mode.ExpectedAttachType())));
            // A return probe: the nesting limit that rules uretprobes out for _PyEval_EvalFrameDefault does not matter for a constructor.
            var link = owned.Add(TargetLinks.Attach(mode, program, binary.UprobePathFor(pid), [new UprobeSite(offset)], pid, returnProbe: true));
            var reader = owned.Add(new RingBufferReader(ring));
            var hook = EvalFrameHook.Install(process);
            var watch = new InterpreterCreationWatch(process, owned, link, reader, hook);
            watch._thread.Start();
            return watch;
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    private void Watch()
    {
        while (!_stopping)
        {
            _reader.WaitForData(50);
            _reader.Drain(_onRecord);
        }
    }

    private void OnRecord(ReadOnlySpan<byte> record)
    {
        var pid = BinaryPrimitives.ReadInt32LittleEndian(record);
        try
        {
            // The record is sent as the stop is requested: wait for it before reading the interpreter list.
            ProcessTree.WaitUntilStopped(pid);
            Interlocked.Add(ref _covered, Hook.Cover(_process));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsdtException or UnsupportedRuntimeException or Bpf.Sys.SyscallException)
        {
            // The process is gone or its list could not be read: it runs on (calls in the new interpreter are then inlined).
        }
        finally
        {
            ProcessSignals.Send(pid, ProcessSignals.SigCont);
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        // No new stops, then no reader; a process stopped meanwhile is let go (its new interpreter's hook stays NULL).
        _owned.Release(item => ReferenceEquals(item, _link));
        _stopping = true;
        // Out of its wait now, not at the end of it (50 ms): detaching waited for it.
        _reader.Interrupt();
        _thread.Join();
        _reader.Drain(record => ProcessSignals.Send(BinaryPrimitives.ReadInt32LittleEndian(record), ProcessSignals.SigCont));
        Hook.Dispose();
        _owned.Dispose();
    }
}
