using System.Buffers.Text;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Testing;
using Microsoft.Playwright;

namespace Airlock.EndToEnd.Tests.Gateway;

/// <summary>
/// An AI client acting for a person: the authorization-code flow with PKCE in headless Chromium (sign in,
/// consent, pick one of your own agents), the token naming agent and person, the recording showing both,
/// and the person's rights narrowing the agent's (an Auditor lends read access only).
/// </summary>
public sealed partial class McpTests
{
    private readonly int _callbackPort = FreePort.Next();

    private string Callback => $"http://127.0.0.1:{_callbackPort}/callback";

    private async Task<string> RegisterClientAsync()
    {
        var response = await H.ControlPlane.Api.PostAsJsonAsync("/api/v1/mcp-clients", new { name = "Desk Assistant", redirectUris = new[] { Callback } });
        McpFixture.Ok(response);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("clientId").GetString()!;
    }

    /// <summary>Runs the browser part of the flow as <paramref name="person"/>; returns the page on the consent screen and the authorize URL's PKCE verifier.</summary>
    private async Task<(IPage Page, string Verifier, Func<string?> Callbacked)> ConsentScreenAsync(string clientId, string person)
    {
        var verifier = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var url = $"{H.ControlPlane.Url}/connect/authorize?client_id={Uri.EscapeDataString(clientId)}&response_type=code&redirect_uri={Uri.EscapeDataString(Callback)}" +
                  $"&code_challenge={challenge}&code_challenge_method=S256&state=xyz&resource={Uri.EscapeDataString(fixture.Resource)}";
        var context = await Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        string? reached = null;
        await page.RouteAsync(Callback + "**", async route =>
        {
            reached = route.Request.Url;
            await route.FulfillAsync(new() { Status = 200, Body = "you may close this window" });
        });
        await page.GotoAsync(url);
        await page.WaitForURLAsync(u => new Uri(u).AbsolutePath == "/account/login");
        await page.FillAsync("input[name=userName]", person);
        await page.FillAsync("input[name=password]", McpFixture.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(u => new Uri(u).AbsolutePath == "/connect/consent");
        return (page, verifier, () => reached);
    }

    private async Task<JsonElement> RedeemAsync(string clientId, string callback, string verifier)
    {
        var query = System.Web.HttpUtility.ParseQueryString(new Uri(callback).Query);
        Assert.Equal("xyz", query["state"]);
        using var http = new HttpClient();
        var response = await http.PostAsync(H.ControlPlane.Url + "/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = query["code"]!, ["redirect_uri"] = Callback, ["client_id"] = clientId, ["code_verifier"] = verifier,
        }));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.IsSuccessStatusCode, body.GetRawText());
        return body;
    }

    private static JsonElement Payload(string jwt) => JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement;

    [Fact]
    public async Task A_person_lets_an_ai_client_act_as_their_agent_and_the_token_and_recording_name_both()
    {
        var clientId = await RegisterClientAsync();
        var (page, verifier, reached) = await ConsentScreenAsync(clientId, "olga");
        await Assertions.Expect(page.GetByTestId("consent-client")).ToHaveTextAsync("Desk Assistant");
        await Assertions.Expect(page.GetByTestId("consent-resource")).ToHaveTextAsync(fixture.Resource);
        await Assertions.Expect(page.GetByTestId("consent-redirect")).ToHaveTextAsync($"127.0.0.1:{_callbackPort}");
        await Assertions.Expect(page.GetByTestId("consent-self-registered")).Not.ToBeVisibleAsync(); // an admin registered it
        Assert.Equal(1, await page.Locator("input[name=agent]").CountAsync()); // only her own agent is offered
        await page.GetByTestId("consent-agent-assistant").CheckAsync();
        await page.GetByTestId("consent-allow").ClickAsync();
        await PolicySyncTests.Eventually(() => Task.FromResult(reached() is not null), seconds: 10);

        var token = (await RedeemAsync(clientId, reached()!, verifier)).GetProperty("access_token").GetString()!;
        var claims = Payload(token);
        Assert.Equal(fixture.Resource, claims.GetProperty("aud").GetString());
        Assert.Equal("assistant", claims.GetProperty("name").GetString());
        Assert.Equal("olga", claims.GetProperty("person").GetString());
        Assert.Equal("full", claims.GetProperty("person_access").GetString());

        await using var client = await fixture.ClientAsync(token, "desk-assistant");
        var (rows, isError) = await CallAsync(client, "query", new() { ["target"] = "pg", ["sql"] = "SELECT name FROM customers WHERE id = $1", ["parameters"] = new object?[] { 1 } });
        Assert.False(isError, rows.GetRawText());
        var session = rows.GetProperty("session").GetString();
        await PolicySyncTests.Eventually(async () =>
        {
            var response = await H.ControlPlane.Api.GetAsync($"/api/v1/sessions/{session}/events?take=1");
            return response.IsSuccessStatusCode
                && JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement is { ValueKind: JsonValueKind.Array } events
                && events.GetArrayLength() == 1
                && events[0].GetProperty("payload") is var start
                && start.GetProperty("agent").GetString() == "assistant"
                && start.TryGetProperty("person", out var person) && person.GetString() == "olga";
        }, seconds: 20);

        // The code is single-use.
        using var again = new HttpClient();
        var replay = await again.PostAsync(H.ControlPlane.Url + "/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = System.Web.HttpUtility.ParseQueryString(new Uri(reached()!).Query)["code"]!,
            ["redirect_uri"] = Callback, ["client_id"] = clientId, ["code_verifier"] = verifier,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
    }

    [Fact]
    public async Task An_auditor_lends_read_access_only_and_nobody_lends_an_agent_they_do_not_own()
    {
        var clientId = await RegisterClientAsync();
        var (page, verifier, reached) = await ConsentScreenAsync(clientId, "audrey");
        await Assertions.Expect(page.GetByTestId("consent-read-only")).ToBeVisibleAsync();
        await page.GetByTestId("consent-allow").ClickAsync();
        await PolicySyncTests.Eventually(() => Task.FromResult(reached() is not null), seconds: 10);
        var token = (await RedeemAsync(clientId, reached()!, verifier)).GetProperty("access_token").GetString()!;
        Assert.Equal("read", Payload(token).GetProperty("person_access").GetString());

        // The same agent, on its own, may write; lent by an Auditor it may not.
        await using (var own = await fixture.ClientAsync(await GatewayHarness.TokenAsync(H.ControlPlane, "scribe", fixture.Resource), "scribe-itself"))
        {
            var (written, _) = await CallAsync(own, "query", new() { ["target"] = "pg", ["sql"] = "INSERT INTO notes VALUES (100, 'by scribe')" });
            AssertStatus("completed", written);
        }
        await using var lent = await fixture.ClientAsync(token, "desk-assistant");
        var (targets, _) = await CallAsync(lent, "list_targets", []);
        Assert.True(targets.GetProperty("targets")[0].GetProperty("readOnly").GetBoolean());
        var (refused, isError) = await CallAsync(lent, "query", new() { ["target"] = "pg", ["sql"] = "INSERT INTO notes VALUES (101, 'for audrey')" });
        Assert.True(isError);
        AssertStatus("blocked", refused);
        Assert.Equal("read-only-delegation", refused.GetProperty("error").GetProperty("rule").GetString());
        Assert.Null(await DirectScalarAsync("SELECT body FROM notes WHERE id = 101"));
        var (read, _) = await CallAsync(lent, "query", new() { ["target"] = "pg", ["sql"] = "SELECT body FROM notes WHERE id = 100" });
        AssertStatus("completed", read);
        // Procedural code could write from inside, where no one reads it: a read-only loan refuses it too.
        var (procedural, _) = await CallAsync(lent, "query", new() { ["target"] = "pg", ["sql"] = "DO $$ BEGIN INSERT INTO notes VALUES (102, 'x'); END $$" });
        AssertStatus("blocked", procedural);
        Assert.Equal("read-only-delegation", procedural.GetProperty("error").GetProperty("rule").GetString());

        // PKCE is S256 only: "plain" would put the verifier in the URL.
        using (var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }))
        {
            var plain = await noRedirects.GetAsync($"{H.ControlPlane.Url}/connect/authorize?client_id={Uri.EscapeDataString(clientId)}&response_type=code" +
                $"&redirect_uri={Uri.EscapeDataString(Callback)}&code_challenge={new string('a', 43)}&code_challenge_method=plain&state=s&resource={Uri.EscapeDataString(fixture.Resource)}");
            Assert.True(plain.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.BadRequest, plain.StatusCode.ToString());
            Assert.Contains("invalid_request", plain.Headers.Location?.ToString() ?? await plain.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Olga is offered only her own agent; a decision naming someone else's is refused.
        var (olga, _, olgaReached) = await ConsentScreenAsync(clientId, "olga");
        await olga.EvaluateAsync("document.querySelector('input[name=agent]').value = 'scribe'");
        await olga.GetByTestId("consent-allow").ClickAsync();
        await Assertions.Expect(olga.Locator("body")).ToContainTextAsync("may let an MCP client act only as an enabled agent they own");
        Assert.Null(olgaReached());

        // A decision not made on the consent page (no antiforgery token) is refused; so is registration while it is off.
        var (signedIn, _) = await ConsoleSignIn.SignInAsync(H.ControlPlane.Url, "olga", McpFixture.Password);
        using var forged = await signedIn.PostAsync("/connect/authorize", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = clientId, ["response_type"] = "code", ["redirect_uri"] = Callback, ["code_challenge"] = "x".PadRight(43, 'x'),
            ["code_challenge_method"] = "S256", ["resource"] = fixture.Resource, ["agent"] = "assistant", ["decision"] = "allow",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains("consent page", await forged.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var anonymous = new HttpClient();
        var register = await anonymous.PostAsJsonAsync(H.ControlPlane.Url + "/connect/register", new { client_name = "rogue", redirect_uris = new[] { "https://rogue.example/cb" } });
        Assert.Equal(HttpStatusCode.NotFound, register.StatusCode);
        Assert.Contains("Dynamic client registration is off", await register.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Clients_register_themselves_only_when_an_admin_turned_it_on_and_only_with_safe_redirects()
    {
        await using var cp = await ControlPlaneProcess.StartAsync(extraArgs: ["--Airlock:Identity:DynamicClientRegistration=true", "--Airlock:Identity:MaxDynamicClients=2"]);
        using var http = new HttpClient();
        var discovery = await http.GetFromJsonAsync<JsonElement>(cp.Url + "/.well-known/oauth-authorization-server");
        Assert.Equal(cp.Url + "/connect/register", discovery.GetProperty("registration_endpoint").GetString());
        Assert.Equal(["S256"], discovery.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(m => m.GetString()));

        var registered = await http.PostAsJsonAsync(cp.Url + "/connect/register", new { client_name = "Claude", redirect_uris = new[] { "http://127.0.0.1:33418/callback" } });
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        var client = await registered.Content.ReadFromJsonAsync<JsonElement>();
        Assert.StartsWith("mcp:", client.GetProperty("client_id").GetString(), StringComparison.Ordinal);
        Assert.Equal("none", client.GetProperty("token_endpoint_auth_method").GetString());
        var listed = await cp.Api.GetFromJsonAsync<JsonElement>("/api/v1/mcp-clients");
        Assert.True(listed[0].GetProperty("dynamic").GetBoolean());

        foreach (var bad in new[] { "http://evil.example/cb", "https://ok.example/cb#frag", "javascript:alert(1)" })
        {
            var refused = await http.PostAsJsonAsync(cp.Url + "/connect/register", new { client_name = "x", redirect_uris = new[] { bad } });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("invalid_client_metadata", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
        }
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsJsonAsync(cp.Url + "/connect/register", new { client_name = "second", redirect_uris = new[] { "https://ide.example/cb" } })).StatusCode);
        var full = await http.PostAsJsonAsync(cp.Url + "/connect/register", new { client_name = "third", redirect_uris = new[] { "https://ide.example/cb" } });
        Assert.Equal(HttpStatusCode.BadRequest, full.StatusCode);
        Assert.Contains("MaxDynamicClients", await full.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
