using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// Where record's profile goes, made sure of before the first sample: a profile is written only after the last one,
/// so a destination that cannot be written must end the run at once rather than throw away minutes of samples at the
/// end. A regular file gets its temporary file beside it at the start (same folder, so the final rename cannot cross
/// file systems); the profile is written there whole and renamed over the destination. A device, FIFO or socket
/// (-o /dev/null, /dev/stdout, a pipe) is written in place at the end and never opened early: opening a FIFO waits for
/// its reader, and a rename would replace it with a regular file (as root, /dev/null for the whole machine). A symlink
/// is followed, so it stays a link with the profile in its target.
/// </summary>
internal sealed class ProfileDestination : IDisposable
{
    private readonly string? _path, _given;
    private readonly string _temporary;
    private FileStream? _stream;

    /// <summary>A device, FIFO or socket: no temporary file, written in place at the end.</summary>
    private bool InPlace => _temporary.Length == 0;

    private ProfileDestination(string? given, string? path, string temporary, FileStream? stream)
    {
        _given = given;
        _path = path;
        _temporary = temporary;
        _stream = stream;
    }

    /// <summary>
    /// Checks and claims the destination: <paramref name="path"/>, or (null) a file in the current folder named at the
    /// end. <see cref="CliException"/> with the reason when it cannot be written.
    /// </summary>
    public static ProfileDestination Open(string? path)
    {
        if (path is not null && Bpf.Sys.FileKind.IsSpecial(path)) return new ProfileDestination(path, path, "", null);
        var given = path;
        var shown = path ?? "the profile into the current folder";
        try
        {
            // (ResolveLinkTarget throws for a path that does not exist yet: ask whether it is a link first.)
            if (path is not null && new FileInfo(path).LinkTarget is not null && File.ResolveLinkTarget(path, returnFinalTarget: true) is { } target)
                path = target.FullName;
            if (path is not null && Directory.Exists(path)) throw new CliException($"cannot write {shown}: it is a folder");
            var full = Path.GetFullPath(path ?? ".");
            var directory = path is null ? full : Path.GetDirectoryName(full)!;
            var temporary = Path.Combine(directory, $".{(path is null ? "pyprobe" : Path.GetFileName(full))}.{Environment.ProcessId}.tmp");
            return new ProfileDestination(given, path, temporary, new FileStream(temporary, FileMode.Create, FileAccess.Write));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw OutputFileError.For(shown, path ?? ".", e);
        }
    }

    /// <summary>
    /// Writes the profile whole and puts it in place: at the path given to <see cref="Open"/>, or else at
    /// <paramref name="defaultName"/> in the current folder. Returns the name to report: the path as given (a link's
    /// name, not its target's), or the default name.
    /// </summary>
    public string Commit(StackProfile profile, OutputFormat format, string defaultName)
    {
        var writer = ProfileWriters.For(format);
        if (InPlace)
        {
            using var special = new FileStream(_path!, FileMode.Open, FileAccess.Write);
            writer.Write(profile, special);
            return _given!;
        }
        var destination = _path ?? defaultName;
        using (var stream = _stream!)
        {
            _stream = null;
            writer.Write(profile, stream);
        }
        File.Move(_temporary, destination, overwrite: true);
        return _given ?? defaultName;
    }

    /// <summary>Removes the temporary file when no profile was put in place (no process sampled, or an error).</summary>
    public void Dispose()
    {
        if (InPlace) return;
        _stream?.Dispose();
        _stream = null;
        File.Delete(_temporary);
    }
}
