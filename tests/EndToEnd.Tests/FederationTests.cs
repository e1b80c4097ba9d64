using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

/// <summary>
/// Federation end to end: a fake GitHub Actions / Kubernetes issuer on loopback, a trusted-issuer
/// binding in the policy, and a real sidecar that validates the external token offline.
/// </summary>
public sealed class FederationTests
{
    private static string Policy(string issuer, string? staticJwks = null, bool agentEnabled = true) => $$$"""
        targets:
        - {name: orders, sidecar: edge-1, listenPort: 16432, upstream: {host: 127.0.0.1, credential: "env:PG"}}
        roles:
        - {name: deployer, grants: [{target: orders}]}
        - {name: k8s-reader, grants: [{target: orders}]}
        agents:
        - {name: ci-api-deploy, owner: admin, role: deployer, enabled: {{{(agentEnabled ? "true" : "false")}}}}
        - {name: k8s-reporting, owner: admin, role: k8s-reader}
        trustedIssuers:
        - name: github
          issuer: {{{issuer}}}
          audiences: [https://github.com/acme]
          {{{(staticJwks is null ? "" : $"jwks: {staticJwks}")}}}
          bindings:
          - name: api-main
            agent: ci-api-deploy
            claims:
            - {claim: repository, exact: acme/api}
            - {claim: ref, oneOf: [refs/heads/main]}
            - {claim: job_workflow_ref, glob: "acme/api/.github/workflows/deploy.yml@*"}
          - name: reporting-sa
            agent: k8s-reporting
            claims:
            - {claim: sub, exact: "system:serviceaccount:reporting:exporter"}
        """;

    private static Dictionary<string, object> GitHubClaims(string repository = "acme/api", string @ref = "refs/heads/main") => new()
    {
        ["aud"] = "https://github.com/acme",
        ["sub"] = $"repo:{repository}:ref:{@ref}",
        ["repository"] = repository,
        ["ref"] = @ref,
        ["job_workflow_ref"] = $"{repository}/.github/workflows/deploy.yml@{@ref}",
    };

    private static async Task<(HttpStatusCode Status, JsonElement Body)> CheckAsync(SidecarProcess sidecar, string token)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, sidecar.Url + "/v1/identity/check");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task A_ci_token_matching_a_binding_is_its_agent_at_the_sidecar_and_nothing_else_is()
    {
        await using var github = await FakeOidcIssuer.StartAsync();
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy(github.Issuer))).StatusCode);

        // Discovery is fetched by the control plane; the keys reach the sidecar in a snapshot.
        await PolicySyncTests.Eventually(async () =>
        {
            var (status, _) = await CheckAsync(sidecar, github.Mint(GitHubClaims()));
            return status == HttpStatusCode.OK;
        }, seconds: 20);
        var (okStatus, ok) = await CheckAsync(sidecar, github.Mint(GitHubClaims()));
        Assert.Equal(HttpStatusCode.OK, okStatus);
        Assert.Equal(("ci-api-deploy", "deployer"), (ok.GetProperty("agent").GetString(), ok.GetProperty("role").GetString()));

        var k8s = github.Mint(new Dictionary<string, object> { ["aud"] = "https://github.com/acme", ["sub"] = "system:serviceaccount:reporting:exporter" });
        Assert.Equal("k8s-reporting", (await CheckAsync(sidecar, k8s)).Body.GetProperty("agent").GetString());

        var (noStatus, no) = await CheckAsync(sidecar, github.Mint(GitHubClaims(@ref: "refs/heads/feature")));
        Assert.Equal(HttpStatusCode.Unauthorized, noStatus);
        Assert.Contains("matches no binding", no.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var (expiredStatus, expired) = await CheckAsync(sidecar, github.Mint(GitHubClaims(), TimeSpan.FromMinutes(-5)));
        Assert.Equal(HttpStatusCode.Unauthorized, expiredStatus);
        Assert.Contains("expired", expired.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var status = JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/trusted-issuer-status")).RootElement[0];
        Assert.Equal(("discovery", "ok"), (status.GetProperty("source").GetString(), status.GetProperty("status").GetString()));

        // Disabling the agent is enforced by the sidecar from the next snapshot on, cached token or not.
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy(github.Issuer, agentEnabled: false))).StatusCode);
        var token = github.Mint(GitHubClaims());
        await PolicySyncTests.Eventually(async () => (await CheckAsync(sidecar, token)).Status == HttpStatusCode.Unauthorized, seconds: 5);
        Assert.Contains("agent 'ci-api-deploy' is disabled", (await CheckAsync(sidecar, token)).Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_static_jwks_works_without_any_fetch_and_an_unreachable_issuer_is_reported()
    {
        await using var github = await FakeOidcIssuer.StartAsync();
        github.Available = false;
        await using var cp = await ControlPlaneProcess.StartAsync();
        await using var sidecar = SidecarProcess.Start(cp.Url, await cp.CreateSidecarAsync("edge-1"));
        await sidecar.WaitForVersionAsync(1);

        // Discovery unreachable: the issuer's status says so, and its tokens are refused (no keys).
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy(github.Issuer))).StatusCode);
        // The refresher's first try, its retry and the HTTP timeouts take longer than the default wait on a loaded machine.
        await PolicySyncTests.Eventually(async () =>
            JsonDocument.Parse(await cp.Api.GetStringAsync("/api/v1/trusted-issuer-status")).RootElement[0].GetProperty("status").GetString() == "unreachable", seconds: 60);
        await sidecar.WaitForVersionAsync(2);
        var (refused, body) = await CheckAsync(sidecar, github.Mint(GitHubClaims()));
        Assert.Equal(HttpStatusCode.Unauthorized, refused);
        Assert.Contains("is not a current key of issuer", body.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // The same keys given statically (air-gapped): accepted, with no fetch at all.
        Assert.Equal(HttpStatusCode.OK, (await cp.PutPolicyAsync(Policy(github.Issuer, staticJwks: github.JwksJson))).StatusCode);
        await PolicySyncTests.Eventually(async () => (await CheckAsync(sidecar, github.Mint(GitHubClaims()))).Status == HttpStatusCode.OK, seconds: 5);
    }
}
