using System.Runtime.InteropServices;

namespace Pyprobe.Cli;

/// <summary>
/// Makes Ctrl-C and <c>kill -INT</c> stop pyprobe however it was started. A process started in the background by a
/// shell without job control (a script's <c>pyprobe trace ... &amp;</c>, many CI runners) begins with SIGINT ignored,
/// and the .NET runtime then leaves it ignored (it installs no handler for an ignored SIGINT), so pyprobe would go on
/// tracing after the interrupt every tracer answers (perf and bpftrace install their handlers regardless). Only the
/// disposition a process starts with decides this, before any managed code runs; so pyprobe sets SIGINT back to its
/// default and runs itself again, once, with the same arguments and environment plus <see cref="MarkerVariable"/>,
/// which tells a command it starts (<c>-- CMD</c>) to ignore SIGINT as it would have.
/// </summary>
internal static unsafe partial class InterruptibleStart
{
    /// <summary>Set in the environment of the second run: SIGINT arrived ignored.</summary>
    public const string MarkerVariable = Pyprobe.Python.Launching.HeldCommand.InterruptWasIgnoredVariable;

    private const int SigInt = 2;

    /// <summary>Runs pyprobe again with SIGINT at its default when it arrived ignored; returns when there is nothing to do or the exec failed.</summary>
    public static void Ensure()
    {
        if (Environment.GetEnvironmentVariable(MarkerVariable) is not null || !IsIgnored(SigInt)) return;
        byte[] commandLine, environment;
        try
        {
            // Both as the kernel holds them: the arguments byte for byte, whatever their encoding.
            commandLine = File.ReadAllBytes("/proc/self/cmdline");
            environment = File.ReadAllBytes("/proc/self/environ");
        }
        catch (IOException)
        {
            return;
        }
        if (Signal(SigInt, 0 /* SIG_DFL */) == -1 /* SIG_ERR */) return;
        var arguments = Split(commandLine);
        var variables = Split(environment);
        variables.Add(System.Text.Encoding.ASCII.GetBytes($"{MarkerVariable}=1"));
        Exec("/proc/self/exe", arguments, variables);
        Signal(SigInt, 1 /* SIG_IGN */); // the exec failed: go on as started
    }

    /// <summary>
    /// Whether <paramref name="signal"/>'s disposition is SIG_IGN, asked of the kernel with sigaction (the runtime leaves an
    /// ignored SIGINT as it found it). Reading /proc/self/status through a stream reader cost more of every launch.
    /// </summary>
    private static bool IsIgnored(int signal)
    {
        // struct sigaction starts with its handler; 256 bytes hold the rest (mask, flags, restorer) on every libc.
        var current = stackalloc nint[32];
        return SigAction(signal, null, current) == 0 && current[0] == 1 /* SIG_IGN */;
    }

    private static List<byte[]> Split(byte[] nulSeparated)
    {
        var parts = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < nulSeparated.Length; i++)
        {
            if (nulSeparated[i] != 0) continue;
            parts.Add(nulSeparated[start..i]);
            start = i + 1;
        }
        if (start < nulSeparated.Length) parts.Add(nulSeparated[start..]);
        return parts;
    }

    private static void Exec(string path, List<byte[]> arguments, List<byte[]> variables)
    {
        var handles = new List<GCHandle>();
        try
        {
            nint Pin(byte[] bytes)
            {
                var terminated = new byte[bytes.Length + 1];
                bytes.CopyTo(terminated, 0);
                var handle = GCHandle.Alloc(terminated, GCHandleType.Pinned);
                handles.Add(handle);
                return handle.AddrOfPinnedObject();
            }
            var argv = arguments.Select(Pin).Append(0).ToArray();
            var envp = variables.Select(Pin).Append(0).ToArray();
            var file = Pin(System.Text.Encoding.UTF8.GetBytes(path));
            fixed (nint* a = argv, e = envp) ExecVe(file, a, e);
        }
        finally
        {
            foreach (var handle in handles) handle.Free();
        }
    }

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint Signal(int signal, nint handler);

    [LibraryImport("libc", EntryPoint = "sigaction")]
    private static partial int SigAction(int signal, nint* action, nint* oldAction);

    [LibraryImport("libc", EntryPoint = "execve", SetLastError = true)]
    private static partial int ExecVe(nint path, nint* argv, nint* envp);
}
