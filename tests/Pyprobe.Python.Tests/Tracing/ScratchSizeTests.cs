using Pyprobe.Python.Audit;
using Pyprobe.Python.Tracing;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Python.Tests.Tracing;

/// <summary>Every event program is generated for one scratch size, before its session's map exists: each must fit it.</summary>
public class ScratchSizeTests
{
    [Fact]
    public void EveryEventProgramsRecordFitsTheScratchValue()
    {
        // The longest record of any probe's layout or of the eval-frame programs, built after the counters and work bytes.
        Assert.InRange(EventProgramParts.RecordOffset + TraceSession.QueuePayloadBytes, 0, EventProgramParts.ScratchBytes);
        Assert.InRange(AuditProgram.ScratchValueSize, 0, EventProgramParts.ScratchBytes);
        // ...with no more than a cache line to spare, or the constant has outgrown what it is for.
        Assert.InRange(EventProgramParts.ScratchBytes - (EventProgramParts.RecordOffset + TraceSession.QueuePayloadBytes), 0, 63);
    }
}
