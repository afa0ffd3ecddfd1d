using System.Runtime.InteropServices;
using System.Text;
using Pyprobe.Python.Tracing;

namespace Pyprobe.Python.Tests.Tracing;

/// <summary>
/// The user-space half of interned strings: bytes a record carried resolve the records that only name them; a string
/// no record carried is read from the process (this test process, through /proc/self/mem) or, for a capture converted
/// later, shows as "?"; the newest bytes a record carried replace what was known (read back or carried before).
/// </summary>
public sealed class SentStringsTests
{
    [Fact]
    public void A_carried_string_resolves_the_records_that_only_name_it()
    {
        var sent = new SentStrings(readProcesses: false);
        sent.Remember(1234, 0x7000_1000, 42, "fib"u8, truncated: false);
        Assert.Equal("fib", Encoding.ASCII.GetString(sent.Resolve(1234, 0x7000_1000, 42, out var truncated)));
        Assert.False(truncated);
        Assert.Equal(1, sent.Reused);
        // Another fingerprint at the same address is another string.
        Assert.Equal("?", Encoding.ASCII.GetString(sent.Resolve(1234, 0x7000_1000, 43, out _)));
        Assert.Equal(1, sent.Unresolved);
    }

    [Fact]
    public void A_string_never_carried_is_read_from_the_process_and_the_carried_bytes_replace_it()
    {
        var address = Marshal.StringToHGlobalAnsi("read_back");
        try
        {
            var sent = new SentStrings();
            var pid = Environment.ProcessId;
            Assert.Equal("read_back", Encoding.ASCII.GetString(sent.Resolve(pid, (ulong)address, 7, out _)));
            Assert.Equal(1, sent.ReadFromProcess);
            // The record carrying the bytes arrives after all (two CPUs racing): what the kernel copied wins.
            sent.Remember(pid, (ulong)address, 7, "carried"u8, truncated: false);
            Assert.Equal("carried", Encoding.ASCII.GetString(sent.Resolve(pid, (ulong)address, 7, out _)));
            Assert.Equal(1, sent.Reused);
            // The newest bytes a record carried win.
            sent.Remember(pid, (ulong)address, 7, "later"u8, truncated: false);
            Assert.Equal("later", Encoding.ASCII.GetString(sent.Resolve(pid, (ulong)address, 7, out _)));
        }
        finally
        {
            Marshal.FreeHGlobal(address);
        }
    }
}
