using MudBlazor;

namespace Airlock.ControlPlane.Components.Layout;

/// <summary>
/// The console's colours, light and dark, chosen for WCAG AA contrast (4.5:1 for text): MudBlazor's
/// defaults fall short for alert text, secondary text and input labels, which the accessibility test
/// (axe-core over every page, both modes) holds the console to.
/// </summary>
public static class ConsoleTheme
{
    public static MudTheme Theme { get; } = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = "#3949ab",
            Secondary = "#6a1b9a",
            Info = "#01579b",
            Success = "#1b5e20",
            Warning = "#8a4600",
            Error = "#b71c1c",
            TextSecondary = "rgba(0,0,0,0.70)",
            AppbarBackground = "#3949ab",
        },
        PaletteDark = new PaletteDark
        {
            Primary = "#9fa8da",
            PrimaryContrastText = "#121212",
            Secondary = "#ce93d8",
            Info = "#81d4fa",
            InfoContrastText = "#121212",
            Success = "#a5d6a7",
            SuccessContrastText = "#121212",
            Warning = "#ffcc80",
            WarningContrastText = "#121212",
            Error = "#ef9a9a",
            ErrorContrastText = "#121212",
            Background = "#121212",
            BackgroundGray = "#1e1e1e",
            Surface = "#1e1e1e",
            DrawerBackground = "#1a1a1a",
            DrawerText = "rgba(255,255,255,0.87)",
            AppbarBackground = "#1e1e1e",
            TextPrimary = "rgba(255,255,255,0.92)",
            TextSecondary = "rgba(255,255,255,0.75)",
            ActionDefault = "rgba(255,255,255,0.80)",
            LinesInputs = "rgba(255,255,255,0.55)",
        },
    };
}
