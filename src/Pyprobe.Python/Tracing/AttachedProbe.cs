using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>A probe live in the kernel for one target; its id is the cookie its events carry.</summary>
/// <param name="Target">The target it is attached to; null for a probe read back from a raw capture (nothing that formats events reads it).</param>
/// <param name="Source">Where its events come from: "USDT", or a uprobe on _PyEval_EvalFrameDefault (function events without USDT).</param>
public sealed record AttachedProbe(uint Id, PythonProbe Probe, TraceTarget? Target, UsdtEventLayout Layout, int SiteCount, string Source = "USDT");
