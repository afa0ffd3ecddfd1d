using Pyprobe.LaunchOrder;

// Usage: Pyprobe.LaunchOrder BINARY SYMBOLS OUTPUT PYTHON_WITH_PROBES [PYTHON_WITHOUT_PROBES]
// Run by scripts/launch-order.sh, which builds BINARY (dist/pyprobe) and SYMBOLS (its .dbg) first and rebuilds after.
if (args.Length is < 4 or > 5)
{
    Console.Error.WriteLine("usage: Pyprobe.LaunchOrder BINARY SYMBOLS OUTPUT PYTHON_WITH_PROBES [PYTHON_WITHOUT_PROBES]");
    return 2;
}
var (binary, symbols, output, withProbes) = (Path.GetFullPath(args[0]), args[1], args[2], args[3]);
var withoutProbes = args.Length > 4 ? args[4] : null;
var workload = Path.Combine(AppContext.BaseDirectory, "leaf.py");

// The most common launch first: what it calls is laid out first.
var scenarios = new List<LaunchScenario>
{
    new("trace -p, USDT", withProbes, ["trace", "-p", "{pid}"]),
    new("calls -p, USDT", withProbes, ["calls", "-p", "{pid}"]),
    new("record -p", withProbes, ["record", "-p", "{pid}", "-o", Path.Combine(Path.GetTempPath(), $"pyprobe-launch-order-{Environment.ProcessId}.svg")]),
};
if (withoutProbes is not null)
{
    scenarios.Add(new("trace -p, eval-frame", withoutProbes, ["trace", "-p", "{pid}"]));
    scenarios.Add(new("calls -p, eval-frame", withoutProbes, ["calls", "-p", "{pid}"]));
}

var functions = ManagedFunctions.Read(binary, symbols);
IReadOnlyList<int> called;
using (var recorder = new FirstCallRecorder(binary, functions.Select(f => f.FileOffset).ToList()))
{
    foreach (var scenario in scenarios)
    {
        scenario.Run(binary, workload);
        Console.Error.WriteLine($"launch-order: ran {scenario.Name}");
    }
    called = recorder.CalledInOrder();
}
File.WriteAllLines(output, called.SelectMany(i => functions[i].Names));
Console.Error.WriteLine($"launch-order: {called.Count} of {functions.Count} managed functions called, written to {output}");
return 0;
