using Airlock.Contracts.Recording;

namespace Airlock.ControlPlane.Sessions;

/// <summary>
/// <c>dotnet ControlPlane.dll verify-bundle FILE</c>: verifies an exported session bundle offline —
/// no store, no network. Exit 0 when the chain and every signed head verify, 1 when not, 2 on bad input.
/// </summary>
public static class BundleCommand
{
    public const string Verb = "verify-bundle";

    public static int Run(string[] args, TextWriter output)
    {
        if (args.Length != 2)
        {
            output.WriteLine($"usage: ControlPlane {Verb} <bundle.json>");
            return 2;
        }
        SessionBundle? bundle;
        try
        {
            using var file = File.OpenRead(args[1]);
            bundle = SessionBundle.Read(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            output.WriteLine($"cannot read {args[1]}: {e.Message}");
            return 2;
        }
        if (bundle is null)
        {
            output.WriteLine($"{args[1]} is not a session bundle");
            return 2;
        }
        var verdict = bundle.Verify();
        output.WriteLine($"session {bundle.Session} from sidecar '{bundle.Sidecar}' (key {bundle.SidecarKeyFingerprint}), {verdict.Events} events");
        if (verdict.Verifies)
        {
            output.WriteLine($"OK: the chain verifies; signed through event {verdict.SignedThrough} of {verdict.Events}");
            output.WriteLine("Check that the key fingerprint is the sidecar's registered key before relying on it.");
            return 0;
        }
        output.WriteLine($"FAILED: {verdict.Reason}");
        return 1;
    }
}
