using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

/// <summary>RFC 7522 over real HTTP: a signed SAML assertion exchanged for an Airlock token, accepted at a real sidecar, once.</summary>
public sealed class SamlExchangeTests
{
    [Fact]
    public async Task A_saml_assertion_buys_a_token_for_its_bound_agent_once()
    {
        using var idp = new TestSamlIdp();
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        var pem = idp.Certificate.ExportCertificatePem().Replace("\n", "\n    ", StringComparison.Ordinal);
        var policy = $$$"""
            targets:
            - {name: orders, sidecar: edge-1, listenPort: 16432, upstream: {host: 127.0.0.1, credential: "env:PG"}}
            roles:
            - {name: deployer, grants: [{target: orders}]}
            agents:
            - {name: saml-deployer, owner: admin, role: deployer}
            trustedIssuers:
            - name: acme-idp
              kind: saml
              issuer: {{{TestSamlIdp.EntityId}}}
              certificate: |
                {{{pem}}}
              bindings:
              - name: deploy-bot
                agent: saml-deployer
                claims: [{claim: NameID, exact: deploy-bot@acme.example}]
            """;
        var put = await cp.PutPolicyAsync(policy);
        Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        await sidecar.WaitForVersionAsync(2);

        var issuer = JsonDocument.Parse(await new HttpClient().GetStringAsync(cp.Url + "/.well-known/openid-configuration")).RootElement.GetProperty("issuer").GetString()!;
        var xml = idp.Sign(TestSamlIdp.Unsigned("_e2e1", "deploy-bot@acme.example", DateTimeOffset.UtcNow, audience: issuer, recipient: issuer.TrimEnd('/') + "/connect/token"));
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:saml2-bearer",
            ["assertion"] = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(xml)),
        };
        using var http = new HttpClient();
        var response = await http.PostAsync(cp.Url + "/connect/token", new FormUrlEncodedContent(form));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());

        using var check = new HttpRequestMessage(HttpMethod.Post, sidecar.Url + "/v1/identity/check");
        check.Headers.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
        var who = JsonDocument.Parse(await (await http.SendAsync(check)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("saml-deployer", who.GetProperty("agent").GetString());

        var replay = await http.PostAsync(cp.Url + "/connect/token", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        Assert.Contains("already used", await replay.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // client_credentials without any client authentication stays refused.
        var anonymous = await http.PostAsync(cp.Url + "/connect/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }));
        Assert.NotEqual(HttpStatusCode.OK, anonymous.StatusCode);
    }
}
