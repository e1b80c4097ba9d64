using Airlock.Benchmarks;

return args.FirstOrDefault() switch
{
    "policy-propagation" => await PolicyPropagation.RunAsync(args[1..]),
    "token-validation" => await TokenValidation.RunAsync(args[1..]),
    "recording-ingest" => await RecordingIngest.RunAsync(args[1..]),
    "gateway" => await GatewayThroughput.RunAsync(args[1..]),
    "guardrails" => await GuardrailCost.RunAsync(args[1..]),
    "masking" => await MaskingCost.RunAsync(args[1..]),
    "approvals" => await ApprovalRoundTrip.RunAsync(args[1..]),
    "mcp" => await McpRoundTrip.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: dotnet run -c Release --project tests/Benchmarks -- <benchmark> [options]

          policy-propagation [--sidecars 50] [--rounds 20] [--postgres]
              Time from PUT /api/v1/policy returning to every subscribed sidecar having
              verified, stored and applied the new snapshot. --postgres uses the server in
              AIRLOCK_TEST_POSTGRES (scripts/test.sh starts one) instead of SQLite.

          token-validation [seconds per measurement, default 2]
              Agent-token validations per second on one core at the sidecar, RS256 and
              ES256, cold (full offline validation) and cached (already validated token).

          recording-ingest [--sessions 50] [--rate 20000] [--seconds 20] [--sqlite]
              Sustained recording ingest into PostgreSQL (AIRLOCK_TEST_POSTGRES) with the
              sidecar's recorder, spool and uploader: events/s and lag to acknowledgement.

          gateway [--seconds 8] [--rounds 3] [--scale 10] [--warmup 5] [--stop-control-plane] [--prepared-only] [--c8-only]
              pgbench -S direct vs pgbouncer (session mode, apt-get install pgbouncer) vs the
              sidecar with recording on, -c 1/8, -M simple/prepared, interleaved rounds, medians
              and ratios; then large results and COPY TO STDOUT in MB/s with the sidecar's peak RSS.
              Needs AIRLOCK_TEST_POSTGRES and root (pgbouncer runs as the 'postgres' user).

          guardrails [--seconds 8] [--rounds 3] [--scale 10] [--micro-only] [--quick]
              Classifier + evaluator cost per statement (µs and bytes, cold and cached) for short,
              long and pathological statements; then pgbench -S and TPC-B through one sidecar with
              the agent-safe baseline vs a single allow-everything rule, as ratios.

          masking [--seconds 8] [--rounds 3] [--scale 10] [--micro-only] [--quick]
              Masking cost per row and per value (each strategy, each content detector); then one
              sidecar, two agents reading the same rows with and without a masked column: pgbench
              TPS, a 1,000,000-row SELECT and COPY in MB/s with the sidecar's peak RSS, as ratios.

          approvals [--runs 200] [--warmup 20]
              Approval round trip: from the approval being stored to the held statement running at
              the target, p50/p90/p99, with one control plane and with two replicas (PostgreSQL store,
              Redis backplane; the vote goes to the replica the sidecar is not connected to).
              Needs AIRLOCK_TEST_POSTGRES and AIRLOCK_TEST_REDIS (scripts/test.sh starts both).

          mcp [--runs 2000] [--warmup 200] [--log-calls]
              The MCP front door's query round trip (C# SDK client, HTTPS) against the same one-row
              read over the wire protocol (Npgsql, TLS) through the same sidecar: p50/p90/p99 and the
              ratio (target: p50 within 2×), with the transport's floor (list_targets, no database) and
              the same call as plain HTTP; --log-calls adds the SDK's server-side handler times.
              Needs AIRLOCK_TEST_POSTGRES.
        """);
    return 2;
}
