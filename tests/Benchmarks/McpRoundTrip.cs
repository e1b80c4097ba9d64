using System.Diagnostics;
using System.Net.Http.Json;
using Airlock.Testing;
using ModelContextProtocol.Client;
using Npgsql;

namespace Airlock.Benchmarks;

/// <summary>
/// The MCP front door's <c>query</c> round trip against the same statement over the wire protocol through
/// the same sidecar: a one-row read by primary key with a parameter, one call at a time, p50/p99 in ms.
/// Wire: Npgsql through the sidecar's listener (TLS, extended protocol unprepared: Parse/Bind/Execute each
/// time, as the front door sends it). MCP: the C# SDK's client over HTTPS (streamable HTTP), its token for
/// the front door's resource. Both with recording, guardrails and masking on; target: MCP p50 within 2×.
/// </summary>
internal static class McpRoundTrip
{
    private const string Sql = "SELECT id, n, label FROM bench WHERE id = $1";

    public static async Task<int> RunAsync(string[] args)
    {
        var runs = Args.Int(args, "--runs", 2000);
        var warmup = Args.Int(args, "--warmup", 200);
        var mcpPort = FreePort.Next();
        var resource = $"https://localhost:{mcpPort}/mcp";
        Console.WriteLine($"MCP query round trip vs the wire protocol, one sidecar: {runs} calls (+{warmup} warm-up) each, {Environment.ProcessorCount} cores");
        await using var harness = await GatewayHarness.StartAsync(sidecarArgs:
            ["--Sidecar:Mcp:Enabled=true", "--Sidecar:Mcp:ListenAddress=127.0.0.1", $"--Sidecar:Mcp:Port={mcpPort}", "--Sidecar:Mcp:MaxConcurrentCallsPerAgent=8", .. args.Contains("--log-calls") ? ["--Logging:LogLevel:ModelContextProtocol=Information"] : Array.Empty<string>()]);
        var cp = harness.ControlPlane;
        await using (var direct = new NpgsqlConnection(harness.DirectConnectionString))
        {
            await direct.OpenAsync();
            await using var setup = new NpgsqlCommand("CREATE TABLE bench (id int PRIMARY KEY, n int NOT NULL, label text NOT NULL); INSERT INTO bench SELECT g, g * 10, 'row ' || g FROM generate_series(1, 1000) g;", direct);
            await setup.ExecuteNonQueryAsync();
        }
        var (_, ready) = await harness.Sidecar.ReadyAsync();
        (await cp.Api.PutAsJsonAsync("/api/v1/roles/bench", new
        {
            baseline = "agent-safe",
            grants = new[] { new { target = "pg" } },
            rules = new object[] { new { name = "labels-partly-masked", action = "mask", mask = new { columns = new[] { "bench.label" }, strategy = "partial", keepLast = 2 } } },
        })).EnsureSuccessStatusCode();
        (await cp.Api.PutAsJsonAsync("/api/v1/agents/bench-agent", new { role = "bench", owner = "admin" })).EnsureSuccessStatusCode();
        await harness.Sidecar.WaitForVersionAsync(ready.GetProperty("version").GetInt64() + 2);
        var wireToken = await GatewayHarness.TokenAsync(cp, "bench-agent");
        var mcpToken = await GatewayHarness.TokenAsync(cp, "bench-agent", resource);

        await using var wire = new NpgsqlConnection(harness.SidecarConnectionStringFor(wireToken, "bench-agent"));
        await wire.OpenAsync();
        var wireTimes = await MeasureAsync(runs, warmup, async id =>
        {
            await using var command = new NpgsqlCommand(Sql, wire) { Parameters = { new() { Value = id } } };
            await using var reader = await command.ExecuteReaderAsync();
            if (!await reader.ReadAsync())
                throw new InvalidOperationException("no row over the wire");
        });

        var http = TlsClients.TrustingOnly(harness.CaPath);
        await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(resource),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + mcpToken },
        }, http, loggerFactory: null, ownsHttpClient: true));
        var mcpTimes = await MeasureAsync(runs, warmup, async id =>
        {
            var result = await client.CallToolAsync("query", new Dictionary<string, object?> { ["target"] = "pg", ["sql"] = Sql, ["parameters"] = new object[] { id } });
            if (result.IsError == true)
                throw new InvalidOperationException("the MCP query failed: " + result.StructuredContent);
        });

        // The transport's floor: a tool that answers from the snapshot, no database.
        var floorTimes = await MeasureAsync(runs, warmup, async _ =>
        {
            var result = await client.CallToolAsync("list_targets", new Dictionary<string, object?>());
            if (result.IsError == true)
                throw new InvalidOperationException("list_targets failed");
        });

        // The same call as plain HTTP (one JSON-RPC POST on a kept-alive connection): the server's share without an SDK client.
        var raw = TlsClients.TrustingOnly(harness.CaPath);
        var rawTimes = await MeasureAsync(runs, warmup, async id =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, resource)
            {
                Content = new StringContent("{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"tools/call\",\"params\":{\"name\":\"query\",\"arguments\":{\"target\":\"pg\",\"sql\":\"" + Sql + "\",\"parameters\":[" + id + "]},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"" + client.NegotiatedProtocolVersion + "\",\"io.modelcontextprotocol/clientCapabilities\":{},\"io.modelcontextprotocol/clientInfo\":{\"name\":\"raw\",\"version\":\"1\"}}}}", System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.ParseAdd("application/json");
            request.Headers.Accept.ParseAdd("text/event-stream");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", mcpToken);
            if (client.SessionId is { } sessionId)
                request.Headers.Add("Mcp-Session-Id", sessionId);
            request.Headers.Add("MCP-Protocol-Version", client.NegotiatedProtocolVersion ?? "2025-06-18");
            request.Headers.Add("Mcp-Method", "tools/call");
            request.Headers.Add("Mcp-Name", "query");
            using var response = await raw.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode || !body.Contains("\"completed\"", StringComparison.Ordinal))
                throw new InvalidOperationException($"raw call: {(int)response.StatusCode} {body}");
        });

        Console.WriteLine();
        Console.WriteLine("path                                    p50 ms   p90 ms   p99 ms");
        Print("wire protocol (Npgsql, TLS)", wireTimes);
        Print("MCP query (C# SDK, HTTPS)", mcpTimes);
        Print("MCP list_targets (no database)", floorTimes);
        Print("MCP query as plain HTTP (no SDK client)", rawTimes);
        var ratio = ApprovalRoundTrip.Percentile(mcpTimes, 50) / ApprovalRoundTrip.Percentile(wireTimes, 50);
        Console.WriteLine($"MCP / wire at p50: {ratio:F2}×; p99: {ApprovalRoundTrip.Percentile(mcpTimes, 99) / ApprovalRoundTrip.Percentile(wireTimes, 99):F2}×");
        if (args.Contains("--log-calls"))
        {
            // The SDK's own timing of each tool call at the server (its log), by tool: the server's share of the round trip.
            foreach (var tool in new[] { "query", "list_targets" })
            {
                var handled = System.Text.RegularExpressions.Regex.Matches(harness.Sidecar.Process.Output, @$"""{tool}"" completed.*\n.*request handler completed in ([0-9.]+)ms")
                    .Select(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
                if (handled.Count > 0)
                    Console.WriteLine($"server-side handler of {tool}: p50 {ApprovalRoundTrip.Percentile(handled, 50):F3} ms over {handled.Count} calls");
            }
        }
        Console.WriteLine($"target p50 within 2× of the wire protocol: {(ratio <= 2 ? "met" : "NOT met")}");
        return 0;
    }

    private static async Task<List<double>> MeasureAsync(int runs, int warmup, Func<int, Task> call)
    {
        var times = new List<double>(runs);
        for (var i = 0; i < warmup + runs; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await call(1 + i % 1000);
            if (i >= warmup)
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        return times;
    }

    private static void Print(string name, List<double> samples) =>
        Console.WriteLine($"{name,-38} {ApprovalRoundTrip.Percentile(samples, 50),7:F3}  {ApprovalRoundTrip.Percentile(samples, 90),7:F3}  {ApprovalRoundTrip.Percentile(samples, 99),7:F3}");
}
