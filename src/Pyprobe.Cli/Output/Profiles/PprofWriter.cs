using System.IO.Compression;
using Google.Protobuf;
using Pyprobe.Python.Profiling;

namespace Pyprobe.Cli.Output.Profiles;

/// <summary>
/// pprof's gzipped <c>profile.proto</c> (google/pprof), written field by field with Google.Protobuf's
/// <see cref="CodedOutputStream"/> (no generated code, nothing reflective: NativeAOT-safe). Two sample types,
/// samples/count and cpu/nanoseconds ("wall" instead of "cpu" for <c>--idle</c>); one location per distinct
/// frame (function and line), one function per distinct (name, file, first line). A sample lists its locations
/// leaf first, as pprof wants.
/// </summary>
internal sealed class PprofWriter : IProfileWriter
{
    /// <summary>record --format pprof.</summary>
    public static readonly OutputFormat Format = new()
    {
        Name = "pprof",
        Noun = "pprof profile",
        Profile = () => new PprofWriter(),
    };

    // Field numbers of profile.proto.
    private const int ProfileSampleType = 1, ProfileSample = 2, ProfileLocation = 4, ProfileFunction = 5,
        ProfileStringTable = 6, ProfileTimeNanos = 9, ProfileDurationNanos = 10, ProfilePeriodType = 11,
        ProfilePeriod = 12, ProfileComment = 13;
    private const int ValueTypeType = 1, ValueTypeUnit = 2;
    private const int SampleLocationId = 1, SampleValue = 2;
    private const int LocationId = 1, LocationLine = 4;
    private const int LineFunctionId = 1, LineLine = 2;
    private const int FunctionId = 1, FunctionName = 2, FunctionSystemName = 3, FunctionFilename = 4, FunctionStartLine = 5;

    public string Extension => "pb.gz";

    public void Write(StackProfile profile, Stream output)
    {
        using var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
        var pb = new CodedOutputStream(gzip, leaveOpen: true);
        Encode(profile, pb);
        pb.Flush();
    }

    /// <summary>The profile message, uncompressed.</summary>
    public static void Encode(StackProfile profile, CodedOutputStream pb)
    {
        var strings = new StringTable();
        ProfileMetadata m = profile.Metadata;
        string clock = m.Mode == ProfileMode.Wall ? "wall" : "cpu";
        long period = m.PeriodNanos;

        WriteValueType(pb, ProfileSampleType, strings.Index("samples"), strings.Index("count"));
        WriteValueType(pb, ProfileSampleType, strings.Index(clock), strings.Index("nanoseconds"));
        WriteValueType(pb, ProfilePeriodType, strings.Index(clock), strings.Index("nanoseconds"));
        WriteInt64(pb, ProfilePeriod, period);
        WriteInt64(pb, ProfileTimeNanos, (m.StartTime - DateTimeOffset.UnixEpoch).Ticks * 100);
        WriteInt64(pb, ProfileDurationNanos, m.Duration.Ticks * 100);

        ulong[] functionOfFrame = WriteFunctions(pb, profile.Frames, strings);
        for (int i = 0; i < profile.Frames.Count; i++)
            WriteLocation(pb, (ulong)i + 1, functionOfFrame[i], profile.Frames[i].Line);

        var locations = new List<ulong>();
        foreach (StackCount stack in profile.Stacks)
        {
            if (stack.Count == 0 || stack.FrameIds.Count == 0)
                continue;
            locations.Clear();
            for (int i = stack.FrameIds.Count - 1; i >= 0; i--)
                locations.Add((ulong)stack.FrameIds[i] + 1);
            WriteSample(pb, locations, [stack.Count, stack.Count * period]);
        }

        long[] comments =
        [
            strings.Index(Describe(m)),
            strings.Index(string.Create(CultureInfo.InvariantCulture,
                $"samples taken {m.Totals.Taken}, with no Python frame {m.Totals.NoPythonFrame}, truncated {m.Totals.Truncated}, lost {m.Totals.Lost}")),
        ];
        WritePacked(pb, ProfileComment, comments);

        foreach (string s in strings.All)
        {
            pb.WriteTag(ProfileStringTable, WireFormat.WireType.LengthDelimited);
            pb.WriteString(s);
        }
    }

    // One function per distinct (name, file, first line); returns each frame's function id.
    private static ulong[] WriteFunctions(CodedOutputStream pb, IReadOnlyList<StackFrame> frames, StringTable strings)
    {
        var ids = new Dictionary<(string, string, int), ulong>();
        var ofFrame = new ulong[frames.Count];
        for (int i = 0; i < frames.Count; i++)
        {
            StackFrame f = frames[i];
            var key = (f.Function, f.File, f.FirstLine);
            if (!ids.TryGetValue(key, out ulong id))
            {
                id = (ulong)ids.Count + 1;
                ids.Add(key, id);
                long name = strings.Index(DisplayName(f.Function)), systemName = strings.Index(f.Function), file = strings.Index(f.File);
                int size = Field(FunctionId, CodedOutputStream.ComputeUInt64Size(id))
                    + Field(FunctionName, CodedOutputStream.ComputeInt64Size(name))
                    + Field(FunctionSystemName, CodedOutputStream.ComputeInt64Size(systemName))
                    + Field(FunctionFilename, CodedOutputStream.ComputeInt64Size(file))
                    + Field(FunctionStartLine, CodedOutputStream.ComputeInt64Size(f.FirstLine));
                StartMessage(pb, ProfileFunction, size);
                WriteUInt64(pb, FunctionId, id);
                WriteInt64(pb, FunctionName, name);
                WriteInt64(pb, FunctionSystemName, systemName);
                WriteInt64(pb, FunctionFilename, file);
                WriteInt64(pb, FunctionStartLine, f.FirstLine);
            }
            ofFrame[i] = id;
        }
        return ofFrame;
    }

    private static void WriteLocation(CodedOutputStream pb, ulong id, ulong functionId, long line)
    {
        int lineSize = Field(LineFunctionId, CodedOutputStream.ComputeUInt64Size(functionId))
            + Field(LineLine, CodedOutputStream.ComputeInt64Size(line));
        int size = Field(LocationId, CodedOutputStream.ComputeUInt64Size(id)) + Embedded(LocationLine, lineSize);
        StartMessage(pb, ProfileLocation, size);
        WriteUInt64(pb, LocationId, id);
        StartMessage(pb, LocationLine, lineSize);
        WriteUInt64(pb, LineFunctionId, functionId);
        WriteInt64(pb, LineLine, line);
    }

    private static void WriteSample(CodedOutputStream pb, List<ulong> locations, ReadOnlySpan<long> values)
    {
        int locationsSize = 0;
        foreach (ulong l in locations)
            locationsSize += CodedOutputStream.ComputeUInt64Size(l);
        int valuesSize = 0;
        foreach (long v in values)
            valuesSize += CodedOutputStream.ComputeInt64Size(v);
        StartMessage(pb, ProfileSample, Embedded(SampleLocationId, locationsSize) + Embedded(SampleValue, valuesSize));
        StartMessage(pb, SampleLocationId, locationsSize);
        foreach (ulong l in locations)
            pb.WriteUInt64(l);
        StartMessage(pb, SampleValue, valuesSize);
        foreach (long v in values)
            pb.WriteInt64(v);
    }

    private static void WriteValueType(CodedOutputStream pb, int field, long type, long unit)
    {
        StartMessage(pb, field, Field(ValueTypeType, CodedOutputStream.ComputeInt64Size(type))
            + Field(ValueTypeUnit, CodedOutputStream.ComputeInt64Size(unit)));
        WriteInt64(pb, ValueTypeType, type);
        WriteInt64(pb, ValueTypeUnit, unit);
    }

    private static void WritePacked(CodedOutputStream pb, int field, ReadOnlySpan<long> values)
    {
        int size = 0;
        foreach (long v in values)
            size += CodedOutputStream.ComputeInt64Size(v);
        StartMessage(pb, field, size);
        foreach (long v in values)
            pb.WriteInt64(v);
    }

    private static void StartMessage(CodedOutputStream pb, int field, int size)
    {
        pb.WriteTag(field, WireFormat.WireType.LengthDelimited);
        pb.WriteLength(size);
    }

    private static void WriteInt64(CodedOutputStream pb, int field, long value)
    {
        pb.WriteTag(field, WireFormat.WireType.Varint);
        pb.WriteInt64(value);
    }

    private static void WriteUInt64(CodedOutputStream pb, int field, ulong value)
    {
        pb.WriteTag(field, WireFormat.WireType.Varint);
        pb.WriteUInt64(value);
    }

    // Bytes of a varint field whose value takes valueSize bytes; of a length-delimited field of size bytes.
    private static int Field(int field, int valueSize) => CodedOutputStream.ComputeTagSize(field) + valueSize;
    private static int Embedded(int field, int size) =>
        CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeLengthSize(size) + size;

    /// <summary>
    /// The name pprof shows. pprof shortens C++-style names by dropping "&lt;…&gt;" template arguments and "(…)"
    /// parameter lists, which turns <c>&lt;module&gt;</c>, <c>&lt;lambda&gt;</c> or <c>&lt;genexpr&gt;</c> into
    /// "&lt;unknown&gt;" and a thread root into "thread N"; look-alike brackets survive it. The exact name stays in
    /// system_name.
    /// </summary>
    public static string DisplayName(string name) =>
        name.AsSpan().IndexOfAny("<>()") < 0
            ? name
            : name.Replace('<', '\u2039').Replace('>', '\u203a').Replace('(', '[').Replace(')', ']');

    private static string Describe(ProfileMetadata m)
    {
        string pids = string.Join(",", m.Pids);
        string version = m.PythonVersion.Length > 0 ? $", CPython {m.PythonVersion}" : "";
        string mode = m.Mode == ProfileMode.Wall ? "wall clock" : "cpu time";
        return string.Create(CultureInfo.InvariantCulture, $"pyprobe record: pid {pids}{version}, {mode}, {m.SampleRateHz} Hz");
    }

    /// <summary>profile.proto's string table: index 0 is always "".</summary>
    private sealed class StringTable
    {
        private readonly Dictionary<string, long> _index = new() { [""] = 0 };
        public readonly List<string> All = [""];

        public long Index(string s)
        {
            if (!_index.TryGetValue(s, out long i))
            {
                i = All.Count;
                _index.Add(s, i);
                All.Add(s);
            }
            return i;
        }
    }
}
