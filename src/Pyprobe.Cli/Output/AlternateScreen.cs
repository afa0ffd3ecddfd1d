using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pyprobe.Cli.Output;

/// <summary>
/// A live Spectre.Console view in the terminal's alternate screen, as both forms of top draw it. The screen is left
/// and the cursor shown again in a finally block, so Ctrl-C and SIGTERM (both a clean stop through the run's
/// StopSignal), the target's exit and errors all give the terminal back as it was.
/// </summary>
internal static class AlternateScreen
{
    /// <summary>Runs <paramref name="body"/> with a live display that shows <paramref name="initial"/> first; the body also gets the terminal's height in rows.</summary>
    public static void Run(IRenderable initial, Action<LiveDisplayContext, Func<int>> body)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        var stdout = Console.Out;
        stdout.Write("\u001b[?1049h\u001b[H");
        stdout.Flush();
        try
        {
            var display = new LiveDisplay(console, initial)
            {
                AutoClear = false,
                Overflow = VerticalOverflow.Crop,
                Cropping = VerticalOverflowCropping.Bottom,
            };
            display.Start(ctx => body(ctx, () => console.Profile.Height));
        }
        finally
        {
            stdout.Write("\u001b[0m\u001b[?25h\u001b[?1049l");
            stdout.Flush();
        }
    }
}
