using System.Buffers;
using Airlock.Contracts.Recording;
using Airlock.Sidecar.Approvals;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Policy.Guardrails;
using Airlock.Sidecar.Policy.Masking;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Recording;

namespace Airlock.Sidecar.Postgres;

/// <summary>Where a session came from, as <c>session.start</c> records it.</summary>
/// <param name="Via">The front door when it is not the wire protocol itself (<c>mcp</c>).</param>
/// <param name="ClientName">The client program as it named itself (MCP's clientInfo), when the front door learns it.</param>
/// <param name="Person">The person an agent acts for (a delegation through the MCP front door).</param>
/// <param name="PersonReadOnly">That person lends read access only: the role's rules are narrowed to reads (<see cref="Baselines.ReadOnly"/>).</param>
internal sealed record SessionOrigin(string ClientAddress, bool Tls, string? Via = null, string? ClientName = null, string? ClientVersion = null, string? Person = null, bool PersonReadOnly = false);

/// <summary>
/// What a front door that speaks PostgreSQL for the agent (the MCP server) learns of its own session:
/// the session's id and a way to end it, each statement's ruling, and a statement put on hold for approval.
/// Called on the relay's loops: implementations only record and signal.
/// </summary>
internal interface ISessionObserver
{
    void Started(Guid session, Action<string> end);

    void Ruled(Ruling ruling);

    void Held(Contracts.Hubs.ApprovalTicket ticket, ApprovalNeed need);

    /// <summary>A held statement was approved and sent to the target: it runs from now.</summary>
    void Released(long requestId);
}

/// <summary>An agent let into a target: its upstream login, whether that runs read-only, and its slot among the target's sessions.</summary>
internal sealed record Admission(UpstreamSession Upstream, bool ReadOnly, IDisposable SessionLease);

/// <summary>
/// One PostgreSQL session once its agent is known, whichever front door brought it (a wire client that
/// logged in with its token, or an MCP call): the same admission and the same relay, guard, masking,
/// approvals and recording.
/// </summary>
internal static class PostgresSession
{
    /// <summary>
    /// The agent's grant (its role, or a temporary grant in force), room in the recorder and a session slot,
    /// then the upstream login with <paramref name="settings"/>. Throws <see cref="GatewayRefusal"/> with the reason.
    /// </summary>
    /// <param name="readOnly">Run read-only whatever the role allows (a person who lends read access only).</param>
    public static async Task<Admission> AdmitAsync(GatewayServices services, TargetPolicy target, AgentPolicy agent,
        IReadOnlyList<KeyValuePair<string, string>> settings, CancellationToken ct, bool readOnly = false)
    {
        // A temporary grant in force judges the session's statements by its elevated role's rules.
        var role = services.Snapshots.Current?.Policy is { } policy ? TemporaryGrant.RoleInForce(policy, agent, target.Name, DateTimeOffset.UtcNow, out _) : null;
        if (role is null || !role.Targets.Contains(target.Name, StringComparer.Ordinal))
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InsufficientPrivilege, $"agent \"{agent.Name}\" (role \"{agent.Role}\") is not granted target \"{target.Name}\""));
        if (!services.Recorder.HasRoom)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InsufficientResources, "this sidecar cannot record sessions right now (recording spool unavailable or full); new sessions are refused (fail closed)"));
        if (services.Limits.TrySession(target.Name, out var lease) != Gateway.Admission.Admitted)
            throw new GatewayRefusal(PgError.Fatal(SqlStates.TooManyConnections,
                $"target \"{target.Name}\" already has {services.Limits.Options.MaxSessionsPerTarget} sessions through this sidecar (Sidecar:Limits:MaxSessionsPerTarget)"));

        // Defence in depth: a role whose rules allow no writes here gets a read-only upstream session, so
        // the server refuses a write the classifier might miss (and the guard refuses every way to undo it).
        readOnly |= !RuleSet.For(role, target.Name).AllowsWrites;
        var sent = readOnly
            ? settings.Where(s => !s.Key.Equals("default_transaction_read_only", StringComparison.OrdinalIgnoreCase))
                .Append(new KeyValuePair<string, string>("default_transaction_read_only", "on")).ToList()
            : settings;
        try
        {
            return new Admission(await services.Connector.ConnectAsync(target, sent, ct), readOnly, lease!);
        }
        catch
        {
            lease?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Serves an admitted session to its end: <c>session.start</c> recorded (fail closed), the startup answer
    /// written to <paramref name="client"/>, then the relay under the guard, masking and approvals, with access
    /// checked again at every policy change; <c>session.end</c> recorded whatever happened.
    /// </summary>
    /// <param name="client">The agent's side: a socket (TLS or not), or the MCP front door's in-process pipe.</param>
    /// <param name="observer">For a front door that speaks the protocol for the agent: its statements' rulings and holds.</param>
    public static async Task ServeAsync(Stream client, TargetPolicy target, PostgresGatewayOptions options, GatewayServices services,
        AgentPolicy agent, UpstreamSession upstream, bool readOnly, SessionOrigin origin, CancellationToken stopping, ISessionObserver? observer = null)
    {
        var session = Guid.CreateVersion7();
        var recording = new SessionRecording(services.Recorder, session, TimeSpan.FromSeconds(options.RecorderWaitSeconds));
        await using var upstreamStream = upstream.Stream;
        var proxySecret = services.CancelKeys.Register(target, upstream.ProcessId, upstream.Secret, out var cancelRegistration, out var holdCancellation);
        using var cancelKey = cancelRegistration;
        try
        {
            await recording.RecordAsync(RecordingEventTypes.SessionStart, RecordingJson.Encode(
                new SessionStartPayload(agent.Name, agent.Role, target.Name, services.Identity.SidecarName, origin.ClientAddress, origin.Tls)
                { Via = origin.Via, ClientName = origin.ClientName, ClientVersion = origin.ClientVersion, Person = origin.Person }));
        }
        catch (RecorderUnavailableException)
        {
            throw new GatewayRefusal(PgError.Fatal(SqlStates.InsufficientResources, "this sidecar cannot record sessions right now; new sessions are refused (fail closed)"));
        }

        // Startup answer: AuthenticationOk, the server's parameters and notices, our cancel key, ReadyForQuery.
        var hello = new ArrayBufferWriter<byte>();
        PgWire.WriteAuthenticationOk(hello);
        foreach (var message in upstream.StartupMessages)
            hello.Write(message);
        PgWire.WriteBackendKeyData(hello, upstream.ProcessId, proxySecret);
        PgWire.WriteReadyForQuery(hello, upstream.TransactionStatus);
        await client.WriteAsync(hello.WrittenMemory, stopping);
        await client.FlushAsync(stopping);
        services.Logger.LogInformation("Session {Session}: agent {Agent} (role {Role}) on target {Target} from {Client}{Tls}{Via}{ReadOnly}",
            session, agent.Name, agent.Role, target.Name, origin.ClientAddress, origin.Tls ? " over TLS" : "",
            (origin.Via is null ? "" : $" via {origin.Via}") + (origin.Person is null ? "" : $" for {origin.Person}"), readOnly ? ", read-only" : "");

        var judge = new SqlSessionJudge(readOnly, services.SafeFunctions, function => services.Catalog.Lookup(target.Name, function), byShape: true);
        var masking = new SessionMasking(services.MaskCatalog, target, CurrentMaskRules(services, target, agent), new ValueMasker(SessionMasking.OpenKey(target, services.Identity)));
        var guard = new PostgresStatementGuard(judge, CurrentRules(services, target, agent, origin.PersonReadOnly), new TargetCatalog(services.Catalog, services.MaskCatalog, target), masking)
        {
            Observer = observer is null ? null : observer.Ruled,
        };
        guard.OnStartup(upstream.StartupMessages);
        var approvals = new Approvals.SessionApprovals(services.Approvals, services.ApprovalChannel, recording, agent, target, holdCancellation,
            () => services.Snapshots.Current?.Policy is { } now ? TemporaryGrant.Active(now, agent.Id, target.Name, DateTimeOffset.UtcNow)?.RequestId : null,
            TimeProvider.System, services.Logger)
        {
            OnHeld = observer is null ? null : observer.Held,
            OnReleased = observer is null ? null : observer.Released,
        };
        var relay = new PostgresRelay(client, upstream, new StatementLedger(options.ResultCaptureBytes), recording, options, guard, masking, approvals);
        using var live = services.LiveSessions.Register(session, reason =>
        {
            relay.End($"terminated: {reason}", PgError.Fatal(SqlStates.AdminShutdown, $"terminating connection: {reason}"));
            return Task.CompletedTask;
        });
        observer?.Started(session, reason => relay.End(reason, PgError.Fatal(SqlStates.AdminShutdown, $"terminating connection: {reason}")));
        using var onStop = stopping.Register(() => relay.End("sidecar shutting down", PgError.Fatal(SqlStates.AdminShutdown, "the Airlock sidecar is shutting down")));
        // Access was checked at connect; it is checked again whenever the policy changes (and once now,
        // in case a snapshot arrived since): a session does not outlive its target, agent or grant.
        // A session that only a temporary grant lets in ends when the grant does, by this sidecar's clock:
        // each check arms a timer for the expiry of the grant in force then, which checks again.
        Timer? grantLapse = null;
        grantLapse = new Timer(_ =>
        {
            if (services.Snapshots.Current is { } now)
                Recheck(now.Policy);
        });
        using var lapseTimer = grantLapse;
        void Recheck(PolicySnapshot policy)
        {
            var now = DateTimeOffset.UtcNow;
            if (SessionStanding.Check(policy, agent.Id, target.Name, now, openedAs: agent.Role) is { } withdrawn)
                relay.End($"access withdrawn: {withdrawn}", PgError.Fatal(SqlStates.AdminShutdown, $"terminating connection: {withdrawn}"));
            else if (TemporaryGrant.Active(policy, agent.Id, target.Name, now) is { } lapsing)
                grantLapse?.Change(Clamp(lapsing.ExpiresAt - now + TimeSpan.FromMilliseconds(50)), Timeout.InfiniteTimeSpan);
        }
        using var onPolicy = services.Listeners.OnPolicyApplied(Recheck);
        if (services.Snapshots.Current is { } current)
            Recheck(current.Policy);
        var reason = await relay.RunAsync();
        if (relay.Failure is { } failure)
            services.Logger.LogError(failure, "Session {Session}: the gateway failed and ended it", session);

        // Tell the target we are done (best effort), then record the end whatever happened.
        try
        {
            await upstreamStream.WriteAsync(PgWire.Terminate(), CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // already gone
        }
        try
        {
            await recording.RecordAsync(RecordingEventTypes.SessionEnd, RecordingJson.Encode(new SessionEndPayload(RecordingLimits.Truncate(reason, RecordingLimits.MaxReasonChars))));
        }
        catch (RecorderUnavailableException)
        {
            services.Logger.LogError("Session {Session}: its end could not be recorded; it will show as interrupted", session);
        }
        services.Logger.LogInformation("Session {Session} ended: {Reason}", session, reason);
    }

    /// <summary>
    /// The rules the agent's statements are judged by now: its role's, or a temporary grant's while it
    /// is in force (looked up again when the snapshot changes or the grant lapses, by this sidecar's clock).
    /// </summary>
    /// <param name="readOnlyPerson">The agent acts for a person who lends read access only: writes are blocked whatever the role says.</param>
    public static Func<RuleSet?> CurrentRules(GatewayServices services, TargetPolicy target, AgentPolicy agent, bool readOnlyPerson = false)
    {
        object? seen = null;
        RuleSet? rules = null;
        var until = DateTimeOffset.MaxValue;
        return () =>
        {
            var snapshot = services.Snapshots.Current;
            if (!ReferenceEquals(snapshot, seen) || (until != DateTimeOffset.MaxValue && DateTimeOffset.UtcNow >= until))
            {
                TemporaryGrant? grant = null;
                var role = snapshot is null ? null : TemporaryGrant.RoleInForce(snapshot.Policy, agent, target.Name, DateTimeOffset.UtcNow, out grant);
                if (readOnlyPerson && role is not null)
                    role = Baselines.ReadOnly(role);
                // Neither the role nor a grant reaches the target (a grant lapsed): nothing is allowed.
                rules = role is null ? null
                    : role.Targets.Contains(target.Name, StringComparer.Ordinal) ? RuleSet.For(role, target.Name)
                    : RuleSet.Compile(role.Name, []);
                until = grant?.ExpiresAt ?? DateTimeOffset.MaxValue; // grants arrive with snapshots: only an expiry moves the rules between two
                seen = snapshot;
            }
            return rules;
        };
    }

    private static TimeSpan Clamp(TimeSpan due) => due < TimeSpan.Zero ? TimeSpan.Zero : due > TimeSpan.FromDays(2) ? TimeSpan.FromDays(2) : due;

    /// <summary>The agent's role's masking rules on this target under the current snapshot (looked up again only when the snapshot changes).</summary>
    public static Func<MaskRules> CurrentMaskRules(GatewayServices services, TargetPolicy target, AgentPolicy agent)
    {
        object? seen = null;
        var rules = MaskRules.None;
        return () =>
        {
            var snapshot = services.Snapshots.Current;
            if (!ReferenceEquals(snapshot, seen))
            {
                var role = snapshot?.Policy.Roles.FirstOrDefault(r => r.Name == agent.Role);
                rules = role is null ? MaskRules.None : MaskRules.For(role, target.Name);
                seen = snapshot;
            }
            return rules;
        };
    }

}
