namespace Pyprobe.Cli.Output;

/// <summary>
/// What a formatter works out once per attached probe (names, prefixes, which arguments to show), found by the
/// probe's id on the per-event path instead of walking the probe's argument list every time.
/// </summary>
internal sealed class ProbePlans<TPlan>(Func<AttachedProbe, TPlan> make) where TPlan : class
{
    private (AttachedProbe Probe, TPlan Plan)[] _plans = [];

    public TPlan For(AttachedProbe probe)
    {
        var id = (int)probe.Id;
        if ((uint)id < (uint)_plans.Length && ReferenceEquals(_plans[id].Probe, probe)) return _plans[id].Plan;
        if (id >= _plans.Length) Array.Resize(ref _plans, Math.Max(id + 1, _plans.Length * 2));
        var plan = make(probe);
        _plans[id] = (probe, plan);
        return plan;
    }
}
