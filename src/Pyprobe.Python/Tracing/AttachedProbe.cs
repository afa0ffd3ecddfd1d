using Pyprobe.Python.Probes;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tracing;

/// <summary>A probe that is live in the kernel; its index in the session is the cookie its events carry.</summary>
public sealed record AttachedProbe(uint Id, PythonProbe Probe, UsdtEventLayout Layout, int SiteCount);
