using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Airlock.Testing;
using ModelContextProtocol.Client;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>The front door with one endpoint per target (Sidecar:Mcp:PerTarget): each target its own resource.</summary>
public sealed class McpPerTargetFixture : IAsyncLifetime
{
    public GatewayHarness Harness { get; private set; } = default!;
    public int McpPort { get; } = FreePort.Next();
    public string Base => $"https://localhost:{McpPort}/mcp";

    public async Task InitializeAsync() =>
        Harness = await GatewayHarness.StartAsync(sidecarArgs:
            ["--Sidecar:Mcp:Enabled=true", "--Sidecar:Mcp:ListenAddress=127.0.0.1", $"--Sidecar:Mcp:Port={McpPort}", "--Sidecar:Mcp:PerTarget=true",
             "--Sidecar:Mcp:MaxSessionsPerAgent=1"]);

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}

public sealed class McpPerTargetTests(McpPerTargetFixture fixture) : IClassFixture<McpPerTargetFixture>
{
    [Fact]
    public async Task Each_target_has_its_own_endpoint_and_a_token_for_one_opens_no_other()
    {
        var h = fixture.Harness;
        var token = await GatewayHarness.TokenAsync(h.ControlPlane, "ci", fixture.Base + "/pg");
        using var http = TlsClients.TrustingOnly(h.CaPath);

        var metadata = await http.GetFromJsonAsync<JsonElement>($"https://localhost:{fixture.McpPort}/.well-known/oauth-protected-resource/mcp/pg");
        Assert.Equal(fixture.Base + "/pg", metadata.GetProperty("resource").GetString());

        await using (var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(fixture.Base + "/pg"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        }, TlsClients.TrustingOnly(h.CaPath), loggerFactory: null, ownsHttpClient: true)))
        {
            var targets = JsonSerializer.SerializeToElement((await client.CallToolAsync("list_targets", new Dictionary<string, object?>())).StructuredContent);
            Assert.Equal(["pg"], targets.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
            var rows = JsonSerializer.SerializeToElement((await client.CallToolAsync("query", new Dictionary<string, object?> { ["target"] = "pg", ["sql"] = "SELECT 41 + 1" })).StructuredContent);
            Assert.Equal("[42]", rows.GetProperty("rows")[0].GetRawText());
            // ci's role grants pg-loopback too, but not through this endpoint.
            var other = JsonSerializer.SerializeToElement((await client.CallToolAsync("query", new Dictionary<string, object?> { ["target"] = "pg-loopback", ["sql"] = "SELECT 1" })).StructuredContent);
            Assert.Equal("denied", other.GetProperty("status").GetString());
        }

        // The same token at another target's endpoint is refused (its audience is pg's endpoint), and the shared endpoint is not served.
        using var request = new HttpRequestMessage(HttpMethod.Post, fixture.Base + "/pg-loopback")
        {
            Content = JsonContent.Create(new { jsonrpc = "2.0", id = 1, method = "initialize", @params = new { protocolVersion = "2025-06-18", capabilities = new { }, clientInfo = new { name = "raw", version = "1" } } }),
        };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        request.Headers.Authorization = new("Bearer", token);
        using var refused = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("oauth-protected-resource/mcp/pg-loopback", refused.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync(fixture.Base, new StringContent("{}"))).StatusCode);
    }

    private async Task<McpClient> ClientAsync(string token) =>
        await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(fixture.Base + "/pg"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        }, TlsClients.TrustingOnly(fixture.Harness.CaPath), loggerFactory: null, ownsHttpClient: true));

    private static async Task<string> SessionOfAsync(McpClient client) =>
        JsonSerializer.SerializeToElement((await client.CallToolAsync("query", new Dictionary<string, object?> { ["target"] = "pg", ["sql"] = "SELECT 1" })).StructuredContent)
            .GetProperty("session").GetString()!;

    /// <summary>An agent holds at most MaxSessionsPerAgent (1 here) upstream sessions: a second one replaces the idle first.</summary>
    [Fact]
    public async Task An_agent_holds_at_most_its_session_cap_and_a_new_session_replaces_the_idle_one()
    {
        var h = fixture.Harness;
        // Two tokens of one agent: two recorded sessions, but only one upstream session at a time.
        await using var a = await ClientAsync(await GatewayHarness.TokenAsync(h.ControlPlane, "ci", fixture.Base + "/pg"));
        await using var b = await ClientAsync(await GatewayHarness.TokenAsync(h.ControlPlane, "ci", fixture.Base + "/pg"));
        var first = await SessionOfAsync(a);
        Assert.Equal(first, await SessionOfAsync(a));
        var second = await SessionOfAsync(b);
        Assert.NotEqual(first, second);
        Assert.NotEqual(first, await SessionOfAsync(a)); // a's idle session was closed to make room, so it has a new one
    }
}
