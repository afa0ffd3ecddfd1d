using System.CommandLine;
using System.IO.Enumeration;
using Pyprobe.Bpf.Links;
using Pyprobe.Bpf.RingBuffer;
using Pyprobe.Cli.Commands.Gc;
using Pyprobe.Cli.Output;
using Pyprobe.Python.Audit;
using Pyprobe.Python.Tracing;

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
        var output = new OutputOptions();
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
            var (tids, duration, ringBytes) = events.Read(result);
            var globs = result.GetValue(filter) ?? [];
            if (globs.Any(string.IsNullOrWhiteSpace)) throw new UsageException("--event needs a non-empty GLOB");
            var json = output.ReadFormat(result) == OutputFormat.Json;
            Privileges.RequireTracing("audit");
            var stderr = result.InvocationConfiguration.Error;
            using var run = EventRun.Start(selection, ["audit"], "audit", targets => new AuditSource(AuditSession.Attach(targets, new TraceSessionOptions(ringBytes, Tids: tids, EntryGate: false))), stderr);
            var session = ((AuditSource)run.Source).Session;
            foreach (var t in session.Targets)
                stderr.WriteLine(t.Decodes
                    ? $"pyprobe: note: {EventRun.Describe(t.Target)}: arguments decoded in the kernel (str, int, bytes, float, bool, None, and tuples/lists of those; first {AuditLayout.TopSlots} arguments, {AuditLayout.NestedPerSlot} items of each)"
                    : $"pyprobe: note: {EventRun.Describe(t.Target)}: argument values are not decoded ({t.NoDecodeReason}); event names and counts only");
            using var sink = output.Open(result, result.InvocationConfiguration.Output);
            var writer = new AuditWriter(sink.Writer, json, run.ManyProcesses, new EventClock());
            long delivered = 0;
            run.Loop(record =>
            {
                delivered++;
                var e = session.Decode(record);
                if (globs.Length > 0 && !globs.Any(g => FileSystemName.MatchesSimpleExpression(g, e.Name, ignoreCase: false))) return;
                writer.Write(e);
            }, duration, sink.Writer.Flush);
            writer.WriteSummary();
            sink.Writer.Flush();
            return run.Complete(delivered, writer.Shown);
        });
        return command;
    }

    private sealed class AuditSource(AuditSession session) : IEventSource
    {
        public AuditSession Session => session;
        public RingBufferReader Reader => session.Reader;
        public UprobeAttachMode AttachMode => session.AttachMode;
        public ulong Lost => session.Lost;
        public void Detach() => session.Detach();
        public void Dispose() => session.Dispose();
    }
}
