using Pyprobe.Python.Probes;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>A probe live in the kernel for one target; its id is the cookie its events carry.</summary>
public sealed record AttachedProbe(uint Id, PythonProbe Probe, TraceTarget Target, UsdtEventLayout Layout, int SiteCount);
