using Airlock.ControlPlane.Identity;

namespace Airlock.ControlPlane.Tests;

/// <summary>RFC 8707 at the token endpoint: which <c>resource</c> values may become a token's audience.</summary>
public sealed class ResourceIndicatorTests
{
    [Theory]
    [InlineData("https://edge-1.example:8443/mcp", null)]
    [InlineData("https://localhost:8443/mcp", null)]
    [InlineData("http://127.0.0.1:8443/mcp", null)]
    [InlineData("http://localhost:8443/mcp", null)]
    [InlineData("http://edge-1.example/mcp", "https")]
    [InlineData("https://edge-1.example/mcp#frag", "fragment")]
    [InlineData("edge-1.example/mcp", "absolute")]
    [InlineData("urn:airlock:edge-1", "https")]
    [InlineData("airlock", "absolute")]
    public void A_resource_is_an_https_url_without_a_fragment(string resource, string? problem)
    {
        var found = AgentTokenIssuer.ResourceProblem(resource);
        if (problem is null)
            Assert.Null(found);
        else
            Assert.Contains(problem, found, StringComparison.Ordinal);
    }

    [Fact]
    public void The_gateways_own_audience_is_not_a_resource()
    {
        var options = new AgentTokenOptions { Audience = "https://gateway.example" };
        Assert.NotNull(AgentTokenIssuer.GatewayAudienceProblem("https://gateway.example", options));
        Assert.Null(AgentTokenIssuer.GatewayAudienceProblem("https://edge-1.example:8443/mcp", options));
    }

    [Fact]
    public void A_resource_is_bounded() =>
        Assert.Contains("500", AgentTokenIssuer.ResourceProblem("https://edge.example/" + new string('a', 600)), StringComparison.Ordinal);

    /// <summary>Where an MCP client's authorization code may be sent.</summary>
    [Theory]
    [InlineData("http://127.0.0.1:33418/callback", null)]
    [InlineData("http://localhost:8080/cb", null)]
    [InlineData("https://ide.example/oauth/callback", null)]
    [InlineData("http://ide.example/cb", "https")]
    [InlineData("https://ide.example/cb#x", "fragment")]
    [InlineData("javascript:alert(1)", "https")]
    [InlineData("/callback", "https")] // a path is a file: URL on Unix: refused all the same
    public void A_redirect_uri_is_https_or_loopback_without_a_fragment(string uri, string? problem)
    {
        var found = McpClients.RedirectProblem(uri);
        if (problem is null)
            Assert.Null(found);
        else
            Assert.Contains(problem, found, StringComparison.Ordinal);
    }
}
