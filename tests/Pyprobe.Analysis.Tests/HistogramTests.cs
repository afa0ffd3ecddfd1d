using Pyprobe.Python.Analysis;

namespace Pyprobe.Analysis.Tests;

public class HistogramTests
{
    [Fact]
    public void BucketsAreContiguousAndContainTheirValues()
    {
        for (var i = 0; i < CallStatsLayout.BucketCount - 1; i++)
        {
            Assert.Equal(CallStatsLayout.BucketUpperBound(i), CallStatsLayout.BucketLowerBound(i + 1));
            Assert.Equal(i, CallStatsLayout.BucketIndex(CallStatsLayout.BucketLowerBound(i)));
            Assert.Equal(i, CallStatsLayout.BucketIndex(CallStatsLayout.BucketUpperBound(i) - 1));
        }
        Assert.Equal(CallStatsLayout.BucketCount - 1, CallStatsLayout.BucketIndex(ulong.MaxValue));
        Assert.Equal(CallStatsLayout.BucketCount - 1, CallStatsLayout.BucketIndex(1UL << 40));
        Assert.Equal(CallStatsLayout.BucketCount - 2, CallStatsLayout.BucketIndex((1UL << 40) - (1UL << 37) - 1));
        Assert.True(CallStatsLayout.BucketLowerBound(CallStatsLayout.BucketCount - 1) > 900_000_000_000UL); // ~1000 s
    }

    [Fact]
    public void QuantilesStayInsideTheirBucketAndTheObservedRange()
    {
        var histogram = new ulong[CallStatsLayout.BucketCount];
        histogram[CallStatsLayout.BucketIndex(1000)] = 50;
        histogram[CallStatsLayout.BucketIndex(1_000_000)] = 50;
        var stats = new FunctionStats(1, "f", "g", 1, 100, 100, 0, 0, 0, 900, 1_100_000, null, null, null, histogram, null);
        var p50 = stats.Quantile(0.5)!.Value;
        Assert.InRange(p50, CallStatsLayout.BucketLowerBound(CallStatsLayout.BucketIndex(1000)), CallStatsLayout.BucketUpperBound(CallStatsLayout.BucketIndex(1000)));
        var p99 = stats.Quantile(0.99)!.Value;
        Assert.InRange(p99, 1_000_000UL * 3 / 4, 1_100_000UL);
    }
}
