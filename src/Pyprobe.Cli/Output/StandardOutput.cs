using System.Text;

namespace Pyprobe.Cli.Output;

/// <summary>
/// The process's standard output as the commands' writer, <see cref="Console.Out"/> made only when first written to:
/// making it (its stream, the output encoding, its buffers) was ~0.5 ms of every launch's first millisecond, and
/// <c>trace</c>, whose events go to fd 1 through a stream of their own (<see cref="EventBuffer"/>), never writes to it.
/// Writes and flushes go to <see cref="Console.Out"/>, which is thread-safe.
/// </summary>
internal sealed class StandardOutput : TextWriter
{
    public static readonly StandardOutput Instance = new();

    private StandardOutput() : base(CultureInfo.InvariantCulture) => CoreNewLine = ['\n'];

    /// <summary>Whether <paramref name="writer"/> is the process's standard output (this, or <see cref="Console.Out"/> itself).</summary>
    public static bool Is(TextWriter writer) => ReferenceEquals(writer, Instance) || ReferenceEquals(writer, Console.Out);

    public override Encoding Encoding => Console.Out.Encoding;

    public override void Write(char value) => Console.Out.Write(value);

    public override void Write(string? value) => Console.Out.Write(value);

    public override void Write(char[] buffer, int index, int count) => Console.Out.Write(buffer, index, count);

    public override void Write(ReadOnlySpan<char> buffer) => Console.Out.Write(buffer);

    public override void WriteLine() => Console.Out.WriteLine();

    public override void WriteLine(string? value) => Console.Out.WriteLine(value);

    public override void WriteLine(ReadOnlySpan<char> buffer) => Console.Out.WriteLine(buffer);

    public override void Flush() => Console.Out.Flush();
}
