using Pyprobe.Cli.Targets;

namespace Pyprobe.Cli.Commands.Running;

/// <summary>
/// What the commands that sample stacks share (record, and top where it samples): the --rate option and its check,
/// and the run itself — targets resolved for sampling, the session started, a note for each Python process left
/// out, the Attached line. serve builds its sampler from the same <see cref="StackSamplerOptions"/> factories.
/// </summary>
internal static class SampledRun
{
    /// <summary>-r/--rate HZ (default 99); <paramref name="when"/> ends the description (" when sampling").</summary>
    public static Option<int> RateOption(string when = "") => new("--rate", "-r")
    {
        Description = $"Samples per second per CPU{when} (1 to {StackSamplerOptions.MaxFrequency}; default {StackSamplerOptions.DefaultFrequency}).",
        HelpName = "HZ",
        DefaultValueFactory = _ => StackSamplerOptions.DefaultFrequency,
    };

    /// <summary>The --rate value; <see cref="UsageException"/> outside 1 to <see cref="StackSamplerOptions.MaxFrequency"/>.</summary>
    public static int ReadRate(ParseResult result, Option<int> option)
    {
        var hz = result.GetValue(option);
        if (hz is < 1 or > StackSamplerOptions.MaxFrequency)
            throw new UsageException($"--rate must be between 1 and {StackSamplerOptions.MaxFrequency} samples per second");
        return hz;
    }

    /// <summary>Resolves <paramref name="selection"/>, starts sampling it and prints the Attached line; <c>Where</c> is what it named.</summary>
    /// <param name="threadRoots">A root frame per thread (record --threads).</param>
    public static (TracingRun<SamplingSession> Run, string Where) Start(TargetSelection selection, StackSamplerOptions options, bool threadRoots, TimeSpan? duration, TextWriter stderr)
    {
        var (targets, scope, where) = SampleTargetSelector.Resolve(selection);
        string? named = null;
        var run = TracingRun<SamplingSession>.Start(targets, _ =>
        {
            // Processes named with -p that cannot be sampled: an error where none of them can (nothing would be sampled,
            // until the duration or Ctrl-C, for nothing), a note for each beside others that can.
            var refused = new List<string>();
            var starting = true;
            var session = SamplingSession.Start(scope, options, threadRoots, (pid, reason) =>
            {
                var line = SampledProcesses.NotSampled(pid, reason);
                if (starting) refused.Add(line);
                else stderr.WriteLine($"pyprobe: note: {line}");
            });
            starting = false;
            if (scope is SampleScope.Processes && session.Pids.Count == 0 && refused.Count > 0)
            {
                session.Dispose();
                throw new CliException(refused.Count == 1 ? refused[0] : $"{refused[0]} (and {refused.Count - 1} more processes are not sampled)");
            }
            foreach (var line in refused) stderr.WriteLine($"pyprobe: note: {line}");
            named = where(session);
            return new Attachment<SamplingSession>(session, "the stack sampler", named);
        }, duration, stderr);
        return (run, named!);
    }
}
