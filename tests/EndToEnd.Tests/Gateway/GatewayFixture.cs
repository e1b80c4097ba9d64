using Airlock.Testing;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>One control plane, sidecar and target database shared by a test class (they take seconds to start).</summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public GatewayHarness Harness { get; private set; } = default!;

    public async Task InitializeAsync() => Harness = await GatewayHarness.StartAsync();

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}
