namespace Pyprobe.Python.Runtime;

/// <summary>
/// What a program needs to name the <c>__init__</c> that 3.13's CALL_ALLOC_AND_ENTER_INIT runs inline, and to know
/// when it ends (<see cref="CPythonFacts.InlineInit"/>).
/// </summary>
/// <param name="HeapTypeInit">
/// offsetof(PyHeapTypeObject, _spec_cache.init): the <c>__init__</c> function the specialisation cached in the class
/// (sizeof(PyTypeObject) 0x1a0, the slot tables 0x1b8, ht_name … _ht_tpname 0x30, then _spec_cache {getitem,
/// getitem_version, init}). The instruction reads it there too, which is how <see cref="EvalFrame.InlineInitSites"/>
/// finds it.
/// </param>
/// <param name="FunctionCode">offsetof(PyFunctionObject, func_code).</param>
public sealed record InlineInitLayout(int HeapTypeInit, int FunctionCode)
{
    /// <summary>
    /// co_flags' CO_NO_MONITORING_EVENTS: on 3.13 only the _Py_InitCleanup shim has it, the frame the instruction
    /// pushes under <c>__init__</c>'s (it checks that <c>__init__</c> returned None).
    /// </summary>
    public const int ShimCodeFlag = 0x2000000;
}
