using System.ComponentModel.DataAnnotations;
using Airlock.ControlPlane.Identity;
using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sessions;

namespace Airlock.ControlPlane;

/// <summary>A start-up failure that names what is wrong: printed as one line, without a stack trace, and the process exits with 2.</summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Checks the <c>Airlock</c> section before anything starts. An unknown key is a typo or an option
/// that no longer exists, so it is refused rather than run without; a value an option does not
/// accept names the option.
/// </summary>
internal static class StartupChecks
{
    private static readonly string[] Values = ["StateDirectory", "PublicUrl", "PublicGrpcUrl", "Redis"];

    private static readonly (string Name, Type Options)[] Sections =
        [("Snapshots", typeof(SnapshotOptions)), ("Identity", typeof(AgentTokenOptions)), ("Recordings", typeof(RecordingOptions)),
         ("KeyRing", typeof(Data.KeyRingOptions)), ("Console", typeof(ConsoleOptions)), ("Webhooks", typeof(Approvals.WebhookOptions))];

    public static void CheckAirlockSection(IConfiguration configuration)
    {
        if (configuration["Airlock:Redis"] is { Length: > 0 } redis)
        {
            try
            {
                StackExchange.Redis.ConfigurationOptions.Parse(redis);
            }
            catch (ArgumentException e)
            {
                throw new StartupException($"Airlock:Redis '{redis}' is not a Redis configuration (host:port[,option=value…]): {e.Message}", e);
            }
        }
        foreach (var child in configuration.GetSection("Airlock").GetChildren())
        {
            if (Values.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                if (child.Value is null)
                    throw new StartupException($"Airlock:{child.Key} must be a single value, not a section");
                continue;
            }
            var (name, type) = Sections.FirstOrDefault(s => string.Equals(s.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (type is null)
                throw new StartupException($"unknown option 'Airlock:{child.Key}' (the Airlock section has {string.Join(", ", Values.Concat(Sections.Select(s => s.Name)))})");
            object options;
            try
            {
                options = child.Get(type, binder => binder.ErrorOnUnknownConfiguration = true) ?? Activator.CreateInstance(type)!;
            }
            catch (InvalidOperationException e)
            {
                throw new StartupException($"invalid option in section 'Airlock:{name}': {e.InnerException?.Message ?? e.Message}", e);
            }
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
                throw new StartupException(string.Join("; ", results.Select(r => r.ErrorMessage is { } m && m.StartsWith("Airlock:", StringComparison.Ordinal)
                    ? m : $"{string.Join(",", r.MemberNames.Select(member => $"Airlock:{name}:{member}"))}: {r.ErrorMessage}")));
        }
    }
}
