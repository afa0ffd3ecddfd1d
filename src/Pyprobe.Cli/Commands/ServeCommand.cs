using Pyprobe.Cli.Commands.Serve;
using Pyprobe.Python.Metrics;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe serve [--listen ADDR:PORT] [-p PID... | --all [PATH]]: a Prometheus exporter. Without a target it
/// watches every Python on the machine, new ones included and exited ones dropped. Function calls and their
/// durations come from the kernel's call statistics (USDT function probes), gc, imports and audit events from
/// their probes, CPU samples from the stack sampler (any CPython, probes or not). The kernel side is read every
/// --refresh into a snapshot that scrapes serve; it runs until SIGINT or SIGTERM (or --duration).
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen", "-l") { Description = $"Serve /metrics on ADDRESS:PORT (default {ListenAddress.Default}, this machine only; :9464 for every interface).", HelpName = "ADDR:PORT", DefaultValueFactory = _ => ListenAddress.Default };
        var pid = SharedOptions.Pid();
        var all = SharedOptions.All();
        var top = new Option<int>("--top") { Description = "Functions (and audit event names) per process with their own series; the rest are summed into one <other> series (default 50).", HelpName = "N", DefaultValueFactory = _ => 50 };
        var refresh = new Option<double>("--refresh") { Description = "Read the kernel side into a new snapshot every SECONDS (default 1).", HelpName = "SECONDS", DefaultValueFactory = _ => 1.0 };
        var rate = new Option<int>("--rate", "-r") { Description = "CPU samples per second per CPU for pyprobe_cpu_samples_total (1 to 1000, default 19; 0 turns sampling off).", HelpName = "HZ", DefaultValueFactory = _ => 19 };
        var count = new Option<bool>("--count") { Description = "Count function calls without timing them: one probe a call and no clock, about half the cost or less; no pyprobe_function_duration_seconds series." };
        var asyncio = new Option<bool>("--asyncio") { Description = "Also pyprobe_asyncio_tasks: each process's pending asyncio tasks, counted at every refresh from its memory (its task registry and each task's state, read in 1 KiB blocks: 13-29 ms a refresh for 10,001 tasks here)." };
        var duration = SharedOptions.Duration();
        var command = new Command("serve", "A Prometheus exporter: /metrics with per-process function calls and durations, CPU samples, gc, imports and audit events of every Python on the machine (or -p/--all).");
        foreach (var option in new Option[] { listen, pid, all, top, refresh, rate, count, asyncio, duration }) command.Options.Add(option);

        command.SetAction(result =>
        {
            var endpoint = ListenAddress.Parse(result.GetValue(listen) ?? "");
            var pids = result.GetValue(pid) ?? [];
            var allGiven = result.GetResult(all) is not null;
            if (pids.Length > 0 && allGiven) throw new UsageException("give -p PID or --all [PATH], not both");
            var interpreter = allGiven ? result.GetValue(all) : null;
            if (interpreter is not null && !File.Exists(interpreter)) throw new CliException($"{interpreter}: no such file");
            SampleScope scope = pids.Length > 0 ? new SampleScope.Processes(pids.Distinct().ToArray()) : new SampleScope.Machine(interpreter);
            var topN = result.GetValue(top);
            if (topN is < 1 or > 10_000) throw new UsageException("--top must be between 1 and 10000");
            var every = result.GetValue(refresh);
            if (!(every >= 0.1 && every <= 3600)) throw new UsageException("--refresh must be between 0.1 and 3600 seconds");
            var hz = result.GetValue(rate);
            if (hz is < 0 or > 1000) throw new UsageException("--rate must be between 0 and 1000 samples per second");
            var limit = SharedOptions.ReadDuration(result, duration);
            foreach (var p in pids)
                if (!Directory.Exists($"/proc/{p}")) throw new CliException($"no process with pid {p}");
            Privileges.RequireTracing("serve");
            var stderr = result.InvocationConfiguration.Error;
            var notes = new object();
            void Note(string text)
            {
                lock (notes) stderr.WriteLine($"pyprobe: note: {text}");
            }

            using var stop = new ManualResetEventSlim();
            using var signals = new StopSignal(stop.Set);
            using var collector = FleetCollector.Start(new FleetOptions(scope, topN, TimeSpan.FromSeconds(every), hz, TimeCalls: !result.GetValue(count), AsyncioTasks: result.GetValue(asyncio)), Note);
            using var server = MetricsHttpServer.Start(endpoint, () => collector.Latest, TimeSpan.FromSeconds(10));
            var first = collector.Latest;
            lock (notes)
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"pyprobe: serving http://{ListenAddress.Show(server.Endpoint)}/metrics: {first.Processes.Count} Python process{(first.Processes.Count == 1 ? "" : "es")} now, {(pids.Length > 0 ? "the chosen pids" : interpreter is null ? "new ones too" : $"new ones of {interpreter} too")}; refreshed every {every:0.###} s"));
            var deadline = limit is { } l ? DateTime.UtcNow + l : DateTime.MaxValue;
            while (!stop.IsSet && DateTime.UtcNow < deadline && collector.Failure is null)
                stop.Wait(TimeSpan.FromMilliseconds(Math.Max(1, Math.Min(500, (deadline - DateTime.UtcNow).TotalMilliseconds))));
            if (collector.Failure is { } failure) throw new CliException($"the collector failed: {failure.Message}");
            return ExitCodes.Success;
        });
        return command;
    }
}
