using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Airlock.Testing;

namespace Airlock.EndToEnd.Tests;

public sealed class ControlPlaneFixture : IAsyncLifetime
{
    public ControlPlaneProcess Cp { get; private set; } = default!;

    public async Task InitializeAsync() => Cp = await ControlPlaneProcess.StartAsync();

    public async Task DisposeAsync() => await Cp.DisposeAsync();
}

/// <summary>The REST API over HTTP against a real control plane: roles, problem responses, sign-in lockout.</summary>
public sealed partial class ApiTests(ControlPlaneFixture fixture) : IClassFixture<ControlPlaneFixture>
{
    private ControlPlaneProcess Cp => fixture.Cp;

    private HttpClient Client(string? bearer) 
    {
        var client = new HttpClient { BaseAddress = new Uri(Cp.Url) };
        if (bearer is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return client;
    }

    private async Task<string> CreateKeyAsync(string role)
    {
        var response = await Cp.Api.PostAsJsonAsync("/api/v1/api-keys", new { name = $"{role}-{Guid.NewGuid():N}", role });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
    }

    [Theory]
    [InlineData(null)]
    [InlineData("ak_wrong-key-0000000000000000000000000")]
    [InlineData("something-else")]
    public async Task Without_a_valid_credential_the_api_answers_401(string? bearer)
    {
        using var client = Client(bearer);
        var response = await client.GetAsync("/api/v1/policy");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task An_auditor_reads_but_cannot_change_anything()
    {
        using var client = Client(await CreateKeyAsync("Auditor"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/policy")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/sidecars")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/audit")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PutAsync("/api/v1/policy", new StringContent("{}", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PostAsJsonAsync("/api/v1/sidecars", new { name = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/api/v1/users")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/api/v1/api-keys")).StatusCode);
    }

    [Fact]
    public async Task An_api_key_names_its_role_there_is_no_admin_by_default()
    {
        var response = await Cp.Api.PostAsJsonAsync("/api/v1/api-keys", new { name = "no-role" });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("role: is required: one of Admin, Approver, Auditor", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain("no-role", await Cp.Api.GetStringAsync("/api/v1/api-keys"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_revoked_api_key_stops_working()
    {
        var key = await CreateKeyAsync("Admin");
        using var client = Client(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/policy")).StatusCode);
        var keys = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/api-keys")).RootElement;
        var id = keys.EnumerateArray().Single(k => k.GetProperty("prefix").GetString() == key[..8]).GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.NoContent, (await Cp.Api.DeleteAsync($"/api/v1/api-keys/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/policy")).StatusCode);
    }

    [Fact]
    public async Task An_invalid_document_is_a_problem_response_listing_every_error_with_its_path()
    {
        var response = await Cp.PutPolicyAsync("targets:\n- name: BAD\n  listenPort: 0\nagents:\n- name: x\n");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var paths = problem.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("path").GetString()).ToList();
        Assert.Contains("targets[0].name", paths);
        Assert.Contains("targets[0].listenPort", paths);
        Assert.Contains("targets[0].upstream", paths);
        Assert.Contains("agents[0].role", paths);
        Assert.Contains("agents[0].owner", paths);
        Assert.Equal("The document is invalid; nothing was applied", problem.GetProperty("title").GetString());
    }

    [Fact]
    public async Task A_syntax_error_is_reported_with_its_line()
    {
        var response = await Cp.PutPolicyAsync("targets: [\n  - {name: a\n");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("line", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_entities_are_404_problems_and_duplicates_409()
    {
        var missing = await Cp.Api.GetAsync("/api/v1/agents/nobody");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await Cp.Api.PostAsync("/api/v1/sidecars/nope/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/sidecars", new { name = "dup" })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await Cp.Api.PostAsJsonAsync("/api/v1/sidecars", new { name = "dup" })).StatusCode);
    }

    [Fact]
    public async Task Entities_have_crud_endpoints_that_share_the_documents_validation()
    {
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/sidecars", new { name = "crud-edge" })).StatusCode);
        var target = new { name = "crud-db", sidecar = "crud-edge", listenPort = 17001, upstream = new { host = "127.0.0.1", credential = "env:CRUD_PW" } };
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/targets", target)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await Cp.Api.PostAsJsonAsync("/api/v1/targets", target)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/roles/crud-role", new { grants = new[] { new { target = "crud-db" } } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/roles/crud-role/rules/no-drop", new { action = "block", match = new { commands = new[] { "drop table" } } })).StatusCode);
        var rules = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/roles/crud-role/rules")).RootElement;
        Assert.Equal("DROP TABLE", rules[0].GetProperty("match").GetProperty("commands")[0].GetString());

        var badAgent = await Cp.Api.PutAsJsonAsync("/api/v1/agents/crud-bot", new { role = "crud-role", owner = "nobody" });
        Assert.Equal(HttpStatusCode.BadRequest, badAgent.StatusCode);
        Assert.Contains("console user 'nobody' does not exist", await badAgent.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/agents/crud-bot", new { role = "crud-role", owner = "admin" })).StatusCode);

        // A role an agent still uses cannot disappear from under it.
        var deleteRole = await Cp.Api.DeleteAsync("/api/v1/roles/crud-role");
        Assert.Equal(HttpStatusCode.BadRequest, deleteRole.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.DeleteAsync("/api/v1/agents/crud-bot")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.DeleteAsync("/api/v1/roles/crud-role")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.DeleteAsync("/api/v1/targets/crud-db")).StatusCode);
    }

    [Fact]
    public async Task Patch_changes_one_field_and_errors_point_inside_the_object()
    {
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/sidecars", new { name = "patch-edge" })).StatusCode);
        var target = new { name = "patch-db", sidecar = "patch-edge", listenPort = 17101, labels = new { env = "dev" }, upstream = new { host = "127.0.0.1", database = "app", credential = "env:PATCH_PW" } };
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/targets", target)).StatusCode);

        var patched = await Cp.Api.PatchAsync("/api/v1/targets/patch-db", new StringContent("""{"upstream":{"port":6543}}""", Encoding.UTF8, "application/merge-patch+json"));
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var stored = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/targets/patch-db")).RootElement;
        Assert.Equal(6543, stored.GetProperty("upstream").GetProperty("port").GetInt32());
        Assert.Equal("app", stored.GetProperty("upstream").GetProperty("database").GetString());
        Assert.Equal("dev", stored.GetProperty("labels").GetProperty("env").GetString());

        var bad = await Cp.Api.PatchAsync("/api/v1/targets/patch-db", new StringContent("""{"upstream":{"port":70000}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var error = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")[0];
        Assert.Equal("upstream.port", error.GetProperty("path").GetString());

        // PUT replaces the whole object; one field is not enough, and the answer says what to do.
        var put = await Cp.Api.PutAsJsonAsync("/api/v1/targets/patch-db", new { listenPort = 17102 });
        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        var putBody = await put.Content.ReadAsStringAsync();
        Assert.Contains("PATCH", putBody, StringComparison.Ordinal);
        Assert.DoesNotContain("targets[", putBody, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NotFound, (await Cp.Api.PatchAsync("/api/v1/agents/nobody", new StringContent("{}", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await Cp.Api.PatchAsync("/api/v1/targets/patch-db", new StringContent("upstream: {port: 1}", Encoding.UTF8, "application/yaml"))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Cp.Api.PatchAsync("/api/v1/targets/patch-db", new StringContent("""{"upstream":{"prot":1}}""", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.DeleteAsync("/api/v1/targets/patch-db")).StatusCode);
    }

    [Fact]
    public async Task A_stale_edit_gets_409_naming_who_changed_the_object_and_a_fresh_one_applies()
    {
        using var bob = Client(await CreateKeyAsync("Admin"));
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/roles/etag-role", new { description = "v1" })).StatusCode);
        var read = await Cp.Api.GetAsync("/api/v1/roles/etag-role");
        var etag = read.Headers.ETag!;

        // Bob changes the role in between.
        using var bobPatch = new HttpRequestMessage(HttpMethod.Patch, "/api/v1/roles/etag-role") { Content = new StringContent("""{"description":"bob's"}""", Encoding.UTF8, "application/json") };
        bobPatch.Headers.IfMatch.Add(etag);
        var bobs = await bob.SendAsync(bobPatch);
        Assert.Equal(HttpStatusCode.OK, bobs.StatusCode);
        Assert.NotEqual(etag, bobs.Headers.ETag);

        using var stale = new HttpRequestMessage(HttpMethod.Put, "/api/v1/roles/etag-role") { Content = JsonContent.Create(new { description = "admin's" }) };
        stale.Headers.IfMatch.Add(etag);
        var conflict = await Cp.Api.SendAsync(stale);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        var problem = JsonDocument.Parse(await conflict.Content.ReadAsStringAsync()).RootElement;
        var bobName = problem.GetProperty("changedBy").GetString()!;
        Assert.StartsWith("apikey:Admin-", bobName, StringComparison.Ordinal);
        Assert.Contains($"{bobName} changed it at", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("bob's", JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/roles/etag-role")).RootElement.GetProperty("description").GetString());

        using var fresh = new HttpRequestMessage(HttpMethod.Put, "/api/v1/roles/etag-role") { Content = JsonContent.Create(new { description = "admin's" }) };
        fresh.Headers.IfMatch.Add(bobs.Headers.ETag!);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.SendAsync(fresh)).StatusCode);

        using var garbage = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/roles/etag-role");
        garbage.Headers.TryAddWithoutValidation("If-Match", "\"not-a-version\"");
        Assert.Equal(HttpStatusCode.BadRequest, (await Cp.Api.SendAsync(garbage)).StatusCode);

        // The whole document carries a version too.
        var export = await Cp.Api.GetAsync("/api/v1/policy");
        var document = await export.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, (await bob.PatchAsync("/api/v1/roles/etag-role", new StringContent("""{"description":"bob again"}""", Encoding.UTF8, "application/json"))).StatusCode);
        using var staleDocument = new HttpRequestMessage(HttpMethod.Put, "/api/v1/policy") { Content = new StringContent(document, Encoding.UTF8, "application/json") };
        staleDocument.Headers.IfMatch.Add(export.Headers.ETag!);
        Assert.Equal(HttpStatusCode.Conflict, (await Cp.Api.SendAsync(staleDocument)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.DeleteAsync("/api/v1/roles/etag-role")).StatusCode);
    }

    [Fact]
    public async Task Parallel_api_edits_of_different_objects_do_not_lose_each_others_changes()
    {
        const int Count = 12;
        await Task.WhenAll(Enumerable.Range(0, Count).Select(async i =>
            Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync($"/api/v1/roles/par-{i}", new { description = "v1" })).StatusCode)));
        var answers = await Task.WhenAll(Enumerable.Range(0, Count).Select(i =>
            Cp.Api.PatchAsync($"/api/v1/roles/par-{i}", new StringContent($$"""{"description":"edited {{i}}"}""", Encoding.UTF8, "application/json"))));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        var roles = JsonDocument.Parse(await Cp.Api.GetStringAsync("/api/v1/roles")).RootElement.EnumerateArray()
            .ToDictionary(r => r.GetProperty("name").GetString()!, r => r.GetProperty("description").GetString());
        for (var i = 0; i < Count; i++)
            Assert.Equal($"edited {i}", roles[$"par-{i}"]);
        await Task.WhenAll(Enumerable.Range(0, Count).Select(i => Cp.Api.DeleteAsync($"/api/v1/roles/par-{i}")));
    }

    [Fact]
    public async Task Users_are_created_with_a_role_and_the_audit_log_never_holds_a_password()
    {
        var response = await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "audrey", password = "audrey-long-password", role = "Auditor" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var weak = await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "weak", password = "short", role = "Superuser" });
        Assert.Equal(HttpStatusCode.BadRequest, weak.StatusCode);
        var weakBody = await weak.Content.ReadAsStringAsync();
        Assert.Contains("at least 12 characters", weakBody, StringComparison.Ordinal);
        Assert.Contains("must be one of", weakBody, StringComparison.Ordinal);
        var audit = await Cp.Api.GetStringAsync("/api/v1/audit?take=1000");
        Assert.DoesNotContain("audrey-long-password", audit, StringComparison.Ordinal);
        Assert.Contains("audrey", audit, StringComparison.Ordinal);

        // Signed in through the console form, an Auditor can read the API but not write.
        var (client, _) = await SignInAsync("audrey", "audrey-long-password");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/policy")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PutAsync("/api/v1/policy", new StringContent("{}", Encoding.UTF8, "application/json"))).StatusCode);
    }

    [Fact]
    public async Task A_signed_in_user_follows_role_changes_and_is_cut_off_when_disabled()
    {
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "morgan", password = "morgan-long-password", role = "Auditor" })).StatusCode);
        var (client, _) = await SignInAsync("morgan", "morgan-long-password");
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/api/v1/users")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/users/morgan", new { role = "Admin" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/users")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/users/morgan", new { disabled = true })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/policy")).StatusCode);
    }

    [Fact]
    public async Task Five_wrong_passwords_shut_this_address_out_even_for_the_right_one_with_the_same_answer_as_an_unknown_user()
    {
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "locky", password = "locky-long-password", role = "Approver" })).StatusCode);
        // Parallel guesses cannot exceed the limit: the slot is taken before the password is checked.
        var guesses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => SignInAsync("locky", "wrong-password")));
        Assert.All(guesses, g => Assert.Contains("error=invalid", g.Location, StringComparison.Ordinal));
        var unknown = (await SignInAsync("nobody-here", "wrong-password")).Location;
        var throttled = (await SignInAsync("locky", "locky-long-password")).Location;
        Assert.Contains("error=invalid", throttled, StringComparison.Ordinal);
        Assert.Equal(unknown.Replace("nobody-here", "", StringComparison.Ordinal), throttled.Replace("locky", "", StringComparison.Ordinal));
        // An admin resetting the password lifts the lock.
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/users/locky", new { password = "locky-new-long-password" })).StatusCode);
        Assert.Equal("/", (await SignInAsync("locky", "locky-new-long-password")).Location);
    }

    [Fact]
    public async Task Signing_out_or_changing_the_password_ends_the_users_other_sessions()
    {
        Assert.Equal(HttpStatusCode.Created, (await Cp.Api.PostAsJsonAsync("/api/v1/users", new { userName = "stamp", password = "stamp-long-password", role = "Auditor" })).StatusCode);
        var (laptop, _) = await SignInAsync("stamp", "stamp-long-password");
        var (phone, _) = await SignInAsync("stamp", "stamp-long-password");
        Assert.Equal(HttpStatusCode.OK, (await phone.GetAsync("/api/v1/sessions")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await laptop.PostAsync("/account/logout", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await phone.GetAsync("/api/v1/sessions")).StatusCode);

        var (again, _) = await SignInAsync("stamp", "stamp-long-password");
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync("/api/v1/sessions")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Cp.Api.PutAsJsonAsync("/api/v1/users/stamp", new { password = "stamp-new-long-password" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await again.GetAsync("/api/v1/sessions")).StatusCode);
    }

    [Fact]
    public async Task The_sign_in_never_redirects_off_site()
    {
        var (_, location) = await SignInAsync("admin", ControlPlaneProcess.AdminPassword, returnUrl: "//evil.example/steal");
        Assert.Equal("/", location);
    }

    [Fact]
    public async Task Metrics_and_health_are_served()
    {
        using var anonymous = Client(null);
        Assert.Equal("Healthy", await anonymous.GetStringAsync("/healthz"));
        var metrics = await anonymous.GetStringAsync("/metrics");
        Assert.Contains("http_server_request_duration", metrics, StringComparison.Ordinal);
    }

    /// <summary>Signs in through the real form (with its antiforgery token); returns the client and the redirect.</summary>
    private Task<(HttpClient Client, string Location)> SignInAsync(string user, string password, string returnUrl = "/") =>
        ConsoleSignIn.SignInAsync(Cp.Url, user, password, returnUrl);
}
