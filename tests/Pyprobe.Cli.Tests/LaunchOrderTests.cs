using Pyprobe.Usdt.Elf;

namespace Pyprobe.Cli.Tests;

/// <summary>
/// The build lays pyprobe's code out in the order src/Pyprobe.Cli/launch-order.txt gives (scripts/launch-order.sh
/// records it from real launches): the methods a launch calls first sit at the start of the code, together. Checked on
/// the symbols of the binary the tests run (.build/publish/pyprobe.dbg, written beside dist/pyprobe by scripts/build.sh).
/// </summary>
public sealed class LaunchOrderTests
{
    private static readonly string OrderFile = Path.Combine(PyprobeBinary.RepoRoot, "src", "Pyprobe.Cli", "launch-order.txt");
    private static readonly string Symbols = Path.Combine(PyprobeBinary.RepoRoot, ".build", "publish", "pyprobe.dbg");

    [Fact]
    public void TheMethodsLaunchesCallFirstStartTheCodeInTheFilesOrder()
    {
        var (code, addresses) = ManagedCode();
        var placed = File.ReadLines(OrderFile).Where(addresses.ContainsKey).Select(name => addresses[name]).Distinct().ToList();
        // The first method in the file opens the code, and the methods follow in the file's order.
        Assert.Equal(code.Address, placed[0]);
        Assert.Equal(placed.OrderBy(a => a), placed);
    }

    [Fact]
    public void TheOrderFileStillNamesTheBinarysMethods()
    {
        var (_, addresses) = ManagedCode();
        var names = File.ReadLines(OrderFile).ToList();
        // Aliases (an export's C name beside its mangled one) are in the file too; most lines must name a method of
        // this build. Fewer means the launch path has changed since the file was written: run scripts/launch-order.sh.
        var found = names.Count(addresses.ContainsKey);
        Assert.True(found >= names.Count * 9 / 10, $"{found} of the {names.Count} names in {OrderFile} are methods of this build: run scripts/launch-order.sh");
    }

    private static (ElfSection Code, Dictionary<string, ulong> Addresses) ManagedCode()
    {
        Assert.True(File.Exists(Symbols), $"{Symbols} is missing: run scripts/build.sh");
        var elf = ElfImage.Open(Symbols);
        var code = elf.FindSection("__managedcode") ?? throw new InvalidOperationException($"{Symbols} has no __managedcode section");
        var addresses = new Dictionary<string, ulong>();
        foreach (var symbol in elf.Symbols)
            if (symbol.IsDefined && symbol.Value >= code.Address && symbol.Value < code.Address + code.Size)
                addresses.TryAdd(symbol.Name, symbol.Value);
        return (code, addresses);
    }
}
