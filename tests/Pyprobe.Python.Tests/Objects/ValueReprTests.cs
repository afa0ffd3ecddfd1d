using Pyprobe.Python.Objects;
using Pyprobe.Python.Tests.Runtime;

namespace Pyprobe.Python.Tests.Objects;

/// <summary>Floats as `dump --locals` writes them, against CPython's own repr() of the same doubles (bit for bit).</summary>
public sealed class ValueReprTests
{
    private static readonly double[] Values =
    [
        0.0, -0.0, 1.0, -1.0, 2.5, -7.25, 0.1, 1 / 3.0, 2 / 3.0, 100.0, 12345.678, 3e10, 1e15, 123456789012345.6,
        1234567890123456.7, 1e16, 1.5e16, 1e22, 0.001, 0.0001, 0.00012, 9.999e-5, 0.00001, 1.5e-5, 1e-300, 5e-324,
        double.MaxValue, double.Epsilon * 3, double.NaN, double.PositiveInfinity, double.NegativeInfinity,
    ];

    [Fact]
    public void Floats_are_written_as_Python_writes_them()
    {
        var python = Interpreters.Command("pyenv:3.12.1");
        var script = "import struct, sys\nfor x in sys.argv[1:]: print(repr(struct.unpack('<d', struct.pack('<q', int(x)))[0]))";
        var expected = Interpreters.Run(python[0], [.. python.Skip(1), "-c", script, .. Values.Select(v => BitConverter.DoubleToInt64Bits(v).ToString())])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Values.Length, expected.Length);
        Assert.Equal(expected, Values.Select(ValueRepr.Float));
    }
}
