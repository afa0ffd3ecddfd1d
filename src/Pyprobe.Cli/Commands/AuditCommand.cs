using System.IO.Enumeration;
using Pyprobe.Cli.Targets;
using Pyprobe.Cli.Output.EventStream;
using Pyprobe.Python.Events;
using Pyprobe.Python.Audit;

namespace Pyprobe.Cli.Commands;

/// <summary>
/// pyprobe audit (-p PID... | --all [PATH] | -- CMD ARGS...): the PEP 578 audit events of a process — files
/// opened, subprocesses, sockets, exec, imports — with their arguments decoded in the kernel while the
/// probe runs (the argument tuple is borrowed and gone afterwards), and how often each event happened.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var target = new TargetOptions();
        var output = new OutputOptions(OutputKind.EventStream);
        var events = new EventOptions();
        var filter = new Option<string[]>("--event") { Description = "Only events whose name matches GLOB (* and ? wildcards, repeatable; e.g. open, 'socket.*', 'subprocess.*').", HelpName = "GLOB", Arity = ArgumentArity.OneOrMore };
        var command = new Command("audit", "Show CPython audit events (PEP 578: open, subprocess.Popen, socket.connect, exec, import, os.system, ...) with their arguments decoded, and count them.");
        target.AddTo(command);
        command.Options.Add(filter);
        events.AddTo(command);
        output.AddTo(command);

        command.SetAction(result =>
        {
            var selection = target.Read(result);
            var (tids, duration, ringBytes, priority) = events.Read(result);
            var globs = result.GetValue(filter) ?? [];
            if (globs.Any(string.IsNullOrWhiteSpace)) throw new UsageException("--event needs a non-empty GLOB");
            var format = output.ReadFormat(result);
            Privileges.RequireTracing("audit");
            var stderr = result.InvocationConfiguration.Error;
            EventBuffer? opened = null;
            using var run = TracingRun<AuditSession>.Start(TargetSelector.Resolve(selection), targets =>
            {
                var usable = RequiredProbes.Usable(targets.Targets, ["audit"], "audit", stderr);
                var session = AuditSession.Attach(usable, new TraceSessionOptions(ringBytes, Tids: tids, EntryGate: false));
                // As trace: the output opened once the probes are live, its writer and this reader raised before the Attached line.
                try
                {
                    opened = output.Open(result, result.InvocationConfiguration.Output);
                }
                catch
                {
                    session.Dispose();
                    throw;
                }
                var governor = ConsumerPriorities.Start(priority, opened.WriterThreadId, session, stderr);
                return new Attachment<AuditSession>(session, "audit", TargetText.Where(usable), Governor: governor);
            }, duration, stderr);
            var session = run.Session;
            foreach (var t in session.Targets)
                stderr.WriteLine(t.Decodes
                    ? $"pyprobe: note: {TargetText.Describe(t.Target)}: arguments decoded in the kernel (str, int, bytes, float, bool, None, and tuples/lists of those; first {AuditLayout.TopSlots} arguments, {AuditLayout.NestedPerSlot} items of each)"
                    : $"pyprobe: note: {TargetText.Describe(t.Target)}: argument values are not decoded ({t.NoDecodeReason}); event names and counts only");
            using var sink = opened!;
            var writer = EventStreamWriters.For(format, new EventStreamContext(sink, new EventClock(), TimeFormat.Seconds, run.Targets.ManyProcesses));
            var counts = new AuditCounts();
            long delivered = 0;
            Action<AuditEvent> handler = e =>
            {
                delivered++;
                if (globs.Length > 0 && !globs.Any(g => FileSystemName.MatchesSimpleExpression(g, e.Name, ignoreCase: false))) return;
                counts.Add(e.Name);
                writer.Audit(e);
            };
            run.Stream(() => session.Drain(handler), sink.Flush, sink.AfterPoll);
            writer.Summary(counts);
            writer.End(new EventStreamEnd(EventClock.MonotonicNowNs(), session.Lost));
            sink.Flush();
            return run.Complete(run.EventReport(delivered, session.Lost, counts.Events));
        });
        return command;
    }
}
