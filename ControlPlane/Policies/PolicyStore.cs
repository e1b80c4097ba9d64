using System.Text.Json;
using Airlock.ControlPlane.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Airlock.ControlPlane.Policies;

public sealed record PolicyChange(string Action, string EntityType, string Name);

/// <summary>An agent as the Agents page lists it.</summary>
public sealed record AgentRow(string Name, string Description, string Owner, string Role, bool Enabled, DateTimeOffset? LastUsedAt);

public sealed record ApplyResult(IReadOnlyList<PolicyError> Errors, IReadOnlyList<PolicyChange> Changes)
{
    public bool Succeeded => Errors.Count == 0;
}

/// <summary>
/// Exports the store as a <see cref="PolicyDocument"/> and applies documents declaratively: what the
/// document names is created or updated, what it omits is deleted, in one transaction, each change
/// audit-logged. Applying an exported document changes nothing.
/// </summary>
public sealed class PolicyStore(AirlockDbContext db, IDataProtectionProvider dataProtection, PolicyChangeNotifier notifier, Identity.AgentCredentials credentials, TimeProvider time)
{
    private readonly IDataProtector _credentials = dataProtection.CreateProtector(CredentialPurpose);
    public const string CredentialPurpose = "Airlock.TargetCredential.v1";

    private static readonly JsonSerializerOptions _compare = new(JsonSerializerDefaults.Web);

    public async Task<PolicyDocument> ExportAsync(CancellationToken ct)
    {
        var targets = await db.Targets.AsNoTracking().Include(t => t.Sidecar).OrderBy(t => t.Name).ToListAsync(ct);
        var roles = await db.Roles.AsNoTracking().Include(r => r.Rules).OrderBy(r => r.Name).ToListAsync(ct);
        var agents = await db.Agents.AsNoTracking().Include(a => a.Role).OrderBy(a => a.Name).ToListAsync(ct);
        var issuers = await db.TrustedIssuers.AsNoTracking().OrderBy(t => t.Name).ToListAsync(ct);
        return new PolicyDocument
        {
            Targets = targets.Select(ToSpec).ToList(),
            Roles = roles.Select(ToSpec).ToList(),
            Agents = agents.Select(ToSpec).ToList(),
            TrustedIssuers = issuers.Select(ToSpec).ToList(),
        };
    }

    /// <summary>Validates the whole document, then applies it atomically; nothing is applied when any error is found.</summary>
    public async Task<ApplyResult> ApplyAsync(PolicyDocument doc, string actor, bool dryRun, CancellationToken ct) =>
        (await ApplyAsync(doc, actor, dryRun, basedOn: null, ct)).Result!;

    /// <summary>
    /// As <see cref="ApplyAsync(PolicyDocument, string, bool, CancellationToken)"/>, but when
    /// <paramref name="basedOn"/> is given only if no policy object changed since that
    /// <see cref="DocumentVersionAsync">document version</see>; otherwise the latest change comes back instead.
    /// </summary>
    /// <returns>The result, or the latest change when <paramref name="basedOn"/> is stale; and the document's version after it (read while this writer still holds the turn).</returns>
    public async Task<(ApplyResult? Result, PolicyObjectVersion? Conflict, PolicyObjectVersion Version)> ApplyAsync(PolicyDocument doc, string actor, bool dryRun, long? basedOn, CancellationToken ct)
    {
        await using var tx = await BeginWriteAsync(ct);
        if (basedOn is { } expected && await DocumentVersionAsync(ct) is var current && current.Version != expected)
            return (null, current, current);
        var result = await ApplyInTransactionAsync(doc, actor, dryRun, ct);
        var version = await DocumentVersionAsync(ct);
        await FinishAsync(tx, result, dryRun, ct);
        return (result, null, version);
    }

    private static readonly string[] _policyAuditTypes = Enum.GetValues<PolicyObjectKind>().Select(k => k.AuditType()).ToArray();

    /// <summary>
    /// The audit actions that change a policy object itself. Others logged against one (an agent's
    /// secret rotated, its keys replaced) leave its version alone: they do not touch what an edit edits.
    /// </summary>
    private static readonly string[] _policyActions = ["create", "update", "delete"];

    /// <summary>The latest change to any policy object: the version of the whole document.</summary>
    public async Task<PolicyObjectVersion> DocumentVersionAsync(CancellationToken ct) =>
        await db.AuditLog.AsNoTracking()
            .Where(a => _policyAuditTypes.Contains(a.EntityType) && _policyActions.Contains(a.Action))
            .OrderByDescending(a => a.Id)
            .Select(a => new PolicyObjectVersion(a.Id, a.Actor, a.At, a.Action))
            .FirstOrDefaultAsync(ct) ?? PolicyObjectVersion.None;

    /// <summary>
    /// Applies one change to one object in one transaction: the document is read, edited and written
    /// while other policy writers wait, and an edit based on an older version of the object than the
    /// stored one is refused as a conflict naming who changed it — never a silent overwrite.
    /// </summary>
    public async Task<EditResult> EditAsync(PolicyEdit edit, string actor, CancellationToken ct)
    {
        await using var tx = await BeginWriteAsync(ct);
        if (edit.BasedOn is { } basedOn && await VersionOfAsync(edit.Kind, edit.Name, ct) is var current && current.Version != basedOn)
            return EditResult.Conflict(current);
        var doc = await ExportAsync(ct);
        if (edit.Change(doc) is { } refusal)
            return EditResult.Refused(refusal);
        var result = await ApplyInTransactionAsync(doc, actor, dryRun: false, ct);
        if (!result.Succeeded)
            return EditResult.Invalid(PolicyErrorPaths.ForObject(result.Errors, doc, edit.Kind, edit.Name));
        // Read while this writer still holds the turn: after commit another's change could be taken for ours.
        var version = await VersionOfAsync(edit.Kind, edit.Name, ct);
        await FinishAsync(tx, result, dryRun: false, ct);
        return EditResult.Applied(result.Changes, version);
    }

    /// <summary>The latest change of one object (its version), or <see cref="PolicyObjectVersion.None"/>.</summary>
    public async Task<PolicyObjectVersion> VersionOfAsync(PolicyObjectKind kind, string name, CancellationToken ct)
    {
        var type = kind.AuditType();
        var latest = await db.AuditLog.AsNoTracking()
            .Where(a => a.EntityType == type && a.EntityName == name && _policyActions.Contains(a.Action))
            .OrderByDescending(a => a.Id)
            .Select(a => new PolicyObjectVersion(a.Id, a.Actor, a.At, a.Action))
            .FirstOrDefaultAsync(ct);
        return latest ?? PolicyObjectVersion.None;
    }

    /// <summary>The version of every object of <paramref name="kind"/> that has one, by name.</summary>
    public async Task<IReadOnlyDictionary<string, long>> VersionsAsync(PolicyObjectKind kind, CancellationToken ct)
    {
        var type = kind.AuditType();
        return await db.AuditLog.AsNoTracking()
            .Where(a => a.EntityType == type && _policyActions.Contains(a.Action))
            .GroupBy(a => a.EntityName)
            .Select(g => new { Name = g.Key, Version = g.Max(a => a.Id) })
            .ToDictionaryAsync(x => x.Name, x => x.Version, StringComparer.Ordinal, ct);
    }

    /// <summary>
    /// A transaction in which this writer is the only policy writer: SQLite's transactions are
    /// <c>BEGIN IMMEDIATE</c> (one writer at a time); on PostgreSQL an advisory lock held until
    /// commit makes concurrent writers — on any replica — take turns.
    /// </summary>
    private async Task<Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction> BeginWriteAsync(CancellationToken ct)
    {
        var tx = await db.Database.BeginTransactionAsync(ct);
        if (db.Database.ProviderName == PostgresProvider)
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_xact_lock({PolicyWriterLock})", ct);
        return tx;
    }

    private const string PostgresProvider = "Npgsql.EntityFrameworkCore.PostgreSQL";

    /// <summary>An arbitrary constant naming the policy writers' advisory lock.</summary>
    private const long PolicyWriterLock = 0x41_69_72_6C_6F_63_6B; // "Airlock"

    private async Task FinishAsync(Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction tx, ApplyResult result, bool dryRun, CancellationToken ct)
    {
        if (!result.Succeeded || dryRun)
        {
            await tx.RollbackAsync(ct);
            db.ChangeTracker.Clear();
            return;
        }
        await tx.CommitAsync(ct);
        if (result.Changes.Count > 0)
            notifier.Publish();
    }

    /// <summary>What the validator needs to know about the store.</summary>
    private async Task<PolicyContext> ContextAsync(CancellationToken ct) => new(
        (await db.Sidecars.Where(s => s.RevokedAt == null).Select(s => s.Name).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal),
        (await db.Users.Select(u => u.UserName).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal),
        (await db.Targets.Where(t => t.CredentialProtected != null).Select(t => t.Name).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal));

    /// <summary>
    /// The policy as one edit would leave it, validated and normalized, without storing anything: what
    /// the Roles page's simulator judges an unsaved form with. Errors are told from the object's side.
    /// </summary>
    public async Task<(PolicyDocument? Document, IReadOnlyList<PolicyError> Errors)> PreviewAsync(PolicyEdit edit, CancellationToken ct)
    {
        var doc = await ExportAsync(ct);
        if (edit.Change(doc) is { } refusal)
            return (null, [new PolicyError("$", refusal.Detail)]);
        var errors = PolicyValidator.ValidateAndNormalize(doc, await ContextAsync(ct));
        return errors.Count > 0 ? (null, PolicyErrorPaths.ForObject(errors, doc, edit.Kind, edit.Name)) : (doc, []);
    }

    private async Task<ApplyResult> ApplyInTransactionAsync(PolicyDocument doc, string actor, bool dryRun, CancellationToken ct)
    {
        var errors = PolicyValidator.ValidateAndNormalize(doc, await ContextAsync(ct));
        if (errors.Count > 0)
            return new ApplyResult(errors, []);

        var now = time.GetUtcNow();
        var changes = new List<PolicyChange>();
        var sidecars = await db.Sidecars.Where(s => s.RevokedAt == null).ToDictionaryAsync(s => s.Name, ct);
        var targets = await db.Targets.Include(t => t.Sidecar).ToDictionaryAsync(t => t.Name, ct);
        var roles = await db.Roles.Include(r => r.Rules).ToDictionaryAsync(r => r.Name, ct);
        var agents = await db.Agents.Include(a => a.Role).ToDictionaryAsync(a => a.Name, ct);
        var issuers = await db.TrustedIssuers.ToDictionaryAsync(t => t.Name, ct);

        // A stored password goes only where it was stored for: moving the upstream (host, port) or
        // weakening how it is sent (TLS, methods) takes the password again — else an Admin could point a
        // target at a host of theirs, test the connection, and read the password off the wire.
        var moved = new List<PolicyError>();
        for (var i = 0; i < doc.Targets!.Count; i++)
        {
            var spec = doc.Targets[i];
            if (!targets.TryGetValue(spec.Name!, out var existing) || existing.CredentialProtected is null
                || spec.Upstream!.Password is not null || spec.Upstream.Credential != PolicyValidator.StoredCredential)
                continue; // nothing stored, a new password, or the stored one given up
            var upstream = spec.Upstream;
            var auth = upstream.Auth is { } methods ? string.Join(',', methods) : "";
            // Another sidecar would get the password sealed to its own key: that moves it too.
            if (upstream.Host != existing.UpstreamHost || upstream.Port != existing.UpstreamPort || upstream.Tls != existing.UpstreamTlsMode || auth != existing.UpstreamAuth
                || spec.Kind != existing.Kind || !sidecars.TryGetValue(spec.Sidecar!, out var sidecar) || sidecar.Id != existing.SidecarId)
                moved.Add(new PolicyError($"targets[{i}].upstream.password",
                    "the upstream's host, port, TLS or methods, or the sidecar serving it, changed: give the password again (a stored password is sent only where it was stored for)"));
        }
        if (moved.Count > 0)
            return new ApplyResult(moved, []);

        void Audit(string action, string type, string name, object? before, object? after)
        {
            changes.Add(new PolicyChange(action, type, name));
            db.Record(now, actor, action, type, name, before, after);
        }

        // Deletions first, dependents before what they depend on: issuers → agents → roles → targets.
        var wantedIssuers = doc.TrustedIssuers!.Select(t => t.Name!).ToHashSet(StringComparer.Ordinal);
        foreach (var issuer in issuers.Values.Where(t => !wantedIssuers.Contains(t.Name)))
        {
            Audit("delete", "trusted-issuer", issuer.Name, ToSpec(issuer), null);
            db.TrustedIssuers.Remove(issuer);
        }
        var wantedAgents = doc.Agents!.Select(a => a.Name!).ToHashSet(StringComparer.Ordinal);
        foreach (var agent in agents.Values.Where(a => !wantedAgents.Contains(a.Name)))
        {
            Audit("delete", "agent", agent.Name, ToSpec(agent), null);
            db.Agents.Remove(agent);
        }
        var wantedRoles = doc.Roles!.Select(r => r.Name!).ToHashSet(StringComparer.Ordinal);
        foreach (var role in roles.Values.Where(r => !wantedRoles.Contains(r.Name)))
        {
            Audit("delete", "role", role.Name, ToSpec(role), null);
            db.Roles.Remove(role);
        }
        var wantedTargets = doc.Targets!.Select(t => t.Name!).ToHashSet(StringComparer.Ordinal);
        foreach (var target in targets.Values.Where(t => !wantedTargets.Contains(t.Name)))
        {
            Audit("delete", "target", target.Name, ToSpec(target), null);
            db.Targets.Remove(target);
        }
        await db.SaveChangesAsync(ct);

        foreach (var spec in doc.Targets!)
        {
            targets.TryGetValue(spec.Name!, out var existing);
            var before = existing is null ? null : ToSpec(existing);
            var password = spec.Upstream!.Password;
            if (existing?.CredentialProtected is { } stored && password is not null && _credentials.Unprotect(stored) == password)
                password = null; // the same secret again: unchanged
            spec.Upstream.Password = null;
            if (before is not null && password is null && Same(before, spec))
                continue;

            var target = existing ?? new Target { Id = Guid.NewGuid(), Name = spec.Name!, Kind = spec.Kind!, UpstreamHost = "" };
            target.Kind = spec.Kind!;
            target.Labels = new Dictionary<string, string>(spec.Labels!);
            target.SidecarId = sidecars[spec.Sidecar!].Id;
            target.ListenPort = spec.ListenPort!.Value;
            target.AllowCleartextOnLoopback = spec.AllowCleartextOnLoopback!.Value;
            target.UpstreamHost = spec.Upstream.Host!;
            target.UpstreamPort = spec.Upstream.Port!.Value;
            target.UpstreamDatabase = spec.Upstream.Database!;
            target.UpstreamUsername = spec.Upstream.Username!;
            target.UpstreamTlsMode = spec.Upstream.Tls!;
            target.UpstreamAuth = spec.Upstream.Auth is { } auth ? string.Join(',', auth) : "";
            if (password is not null)
            {
                target.CredentialProtected = _credentials.Protect(password);
                target.CredentialSealed = null;
                target.SealedForKey = null;
            }
            if (spec.Upstream.Credential != PolicyValidator.StoredCredential)
            {
                target.CredentialProtected = null;
                target.CredentialSealed = null;
                target.SealedForKey = null;
            }
            target.CredentialReference = spec.Upstream.Credential == PolicyValidator.StoredCredential ? null : spec.Upstream.Credential;
            if (existing is null)
                db.Targets.Add(target);
            targets[target.Name] = target;
            // The "after" view says a credential was stored, never what it is.
            var after = ToSpec(target);
            if (password is not null)
                after.Upstream!.Password = AuditLog.Redacted;
            Audit(existing is null ? "create" : "update", "target", target.Name, before, after);
        }

        foreach (var spec in doc.Roles!)
        {
            roles.TryGetValue(spec.Name!, out var existing);
            var before = existing is null ? null : ToSpec(existing);
            if (before is not null && Same(before, spec))
                continue;
            var role = existing ?? new Role { Id = Guid.NewGuid(), Name = spec.Name! };
            role.Description = spec.Description!;
            role.Baseline = spec.Baseline;
            role.Grants = spec.Grants!.Select(g => new GrantData(g.Target, g.Selector is null ? null : new Dictionary<string, string>(g.Selector))).ToList();
            if (existing is null)
                db.Roles.Add(role);
            else
                db.Rules.RemoveRange(role.Rules);
            role.Rules = spec.Rules!.Select((r, i) => ToEntity(r, role.Id, i)).ToList();
            // Explicitly Added: EF would take rules with preset keys on a tracked role for existing rows.
            db.Rules.AddRange(role.Rules);
            roles[role.Name] = role;
            Audit(existing is null ? "create" : "update", "role", role.Name, before, ToSpec(role));
        }
        await db.SaveChangesAsync(ct);

        foreach (var spec in doc.Agents!)
        {
            agents.TryGetValue(spec.Name!, out var existing);
            var before = existing is null ? null : ToSpec(existing);
            if (before is not null && Same(before, spec))
                continue;
            var agent = existing ?? new Agent { Id = Guid.NewGuid(), Name = spec.Name!, Owner = spec.Owner!, CreatedAt = now };
            agent.Description = spec.Description!;
            agent.Owner = spec.Owner!;
            agent.Role = roles[spec.Role!];
            agent.RoleId = agent.Role.Id;
            agent.Enabled = spec.Enabled!.Value;
            if (existing is null)
                db.Agents.Add(agent);
            Audit(existing is null ? "create" : "update", "agent", agent.Name, before, ToSpec(agent));
        }

        foreach (var spec in doc.TrustedIssuers!)
        {
            issuers.TryGetValue(spec.Name!, out var existing);
            var before = existing is null ? null : ToSpec(existing);
            if (before is not null && Same(before, spec))
                continue;
            var issuer = existing ?? new TrustedIssuer { Id = Guid.NewGuid(), Name = spec.Name!, Issuer = spec.Issuer! };
            var staticJwks = spec.Jwks is null ? null : JsonSerializer.Serialize(spec.Jwks, _compare);
            if (issuer.Issuer != spec.Issuer || issuer.StaticJwks != staticJwks)
            {
                // Another issuer or other keys: what was fetched before no longer applies.
                issuer.FetchedJwks = null;
                issuer.FetchedAt = null;
                issuer.LastError = null;
            }
            issuer.Issuer = spec.Issuer!;
            issuer.Kind = spec.Kind!;
            issuer.Certificate = spec.Certificate;
            issuer.Audiences = [.. spec.Audiences!];
            issuer.StaticJwks = staticJwks;
            issuer.Bindings = spec.Bindings!.Select(b => new BindingData(b.Name!, b.Agent!, b.Claims!.Select(ToCondition).ToList())).ToList();
            if (existing is null)
                db.TrustedIssuers.Add(issuer);
            Audit(existing is null ? "create" : "update", "trusted-issuer", issuer.Name, before, ToSpec(issuer));
        }

        if (!dryRun)
        {
            // A deleted agent's token-endpoint credentials go with it, in the same transaction: a new
            // agent of the same name must not inherit them.
            await credentials.RemoveOrphansAsync(agents.Keys.Where(a => !wantedAgents.Contains(a)), ct);
        }
        await db.SaveChangesAsync(ct);
        return new ApplyResult([], changes);
    }

    /// <summary>
    /// One page of agents, filtered in the database by a term in the name, owner, role or
    /// description (case-insensitive), with the total that match: the Agents page's list.
    /// </summary>
    public async Task<(IReadOnlyList<AgentRow> Rows, int Total)> SearchAgentsAsync(string? term, int skip, int take, CancellationToken ct)
    {
        var query = db.Agents.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(term))
        {
            var t = term.Trim().ToLowerInvariant();
            query = query.Where(a => a.Name.ToLower().Contains(t) || a.Owner.ToLower().Contains(t)
                || a.Role!.Name.ToLower().Contains(t) || a.Description.ToLower().Contains(t));
        }
        var total = await query.CountAsync(ct);
        var rows = await query.OrderBy(a => a.Name).Skip(skip).Take(take)
            .Select(a => new AgentRow(a.Name, a.Description, a.Owner, a.Role!.Name, a.Enabled, a.LastUsedAt))
            .ToListAsync(ct);
        return (rows, total);
    }

    private static bool Same(object a, object b) =>
        JsonSerializer.Serialize(a, _compare) == JsonSerializer.Serialize(b, _compare);

    /// <summary>
    /// A role as the store would hold it, not stored: what the simulator judges a draft with. The spec
    /// must be validated and normalized first.
    /// </summary>
    public static Role ToUnsavedEntity(RoleSpec spec)
    {
        var role = new Role
        {
            Id = Guid.NewGuid(), Name = spec.Name!, Description = spec.Description ?? "", Baseline = spec.Baseline,
            Grants = spec.Grants!.Select(g => new GrantData(g.Target, g.Selector is null ? null : new Dictionary<string, string>(g.Selector))).ToList(),
        };
        role.Rules = spec.Rules!.Select((r, i) => ToEntity(r, role.Id, i)).ToList();
        return role;
    }

    private static Rule ToEntity(RuleSpec r, Guid roleId, int position) => new()
    {
        Id = Guid.NewGuid(),
        RoleId = roleId,
        Name = r.Name!,
        Position = position,
        Action = r.Action!,
        Targets = [.. r.Targets!],
        Match = new RuleMatchData([.. r.Match!.Classes!], [.. r.Match.Commands!], [.. r.Match.Tables!], r.Match.Pattern, [.. r.Match.Functions!], [.. r.Match.Flags!]),
        Message = r.Message,
        Mask = r.Mask is { } m ? new MaskData([.. m.Columns!], [.. m.Detectors!], m.Strategy!, m.KeepLast, m.Mode) : null,
        Approval = r.Approval is { } a ? new ApprovalData(a.Mode!, a.Approvals!.Value, a.Group, a.TimeoutSeconds!.Value, a.WindowMinutes) : null,
    };

    // The export form of each entity. It is also the audit view, so it must never carry a secret.

    public static TargetSpec ToSpec(Target t) => new()
    {
        Name = t.Name,
        Kind = t.Kind,
        Sidecar = t.Sidecar?.Name,
        ListenPort = t.ListenPort,
        AllowCleartextOnLoopback = t.AllowCleartextOnLoopback,
        Labels = new Dictionary<string, string>(t.Labels.OrderBy(l => l.Key, StringComparer.Ordinal)),
        Upstream = new UpstreamSpec
        {
            Host = t.UpstreamHost,
            Port = t.UpstreamPort,
            Database = t.UpstreamDatabase,
            Username = t.UpstreamUsername,
            Tls = t.UpstreamTlsMode,
            Auth = t.UpstreamAuth.Length == 0 ? null : [.. t.UpstreamAuth.Split(',')],
            Credential = t.CredentialProtected is not null ? PolicyValidator.StoredCredential : t.CredentialReference,
        },
    };

    public static RoleSpec ToSpec(Role r) => new()
    {
        Name = r.Name,
        Description = r.Description,
        Baseline = r.Baseline,
        Grants = r.Grants.Select(g => new GrantSpec { Target = g.Target, Selector = g.Selector }).ToList(),
        Rules = r.Rules.OrderBy(x => x.Position).Select(x => new RuleSpec
        {
            Name = x.Name,
            Action = x.Action,
            Targets = [.. x.Targets],
            Match = new MatchSpec
            {
                Classes = [.. x.Match.Classes], Commands = [.. x.Match.Commands], Tables = [.. x.Match.Tables],
                Functions = [.. x.Match.Functions ?? []], Flags = [.. x.Match.Flags ?? []], Pattern = x.Match.Pattern,
            },
            Message = x.Message,
            Mask = x.Mask is { } m ? new MaskSpecDoc { Columns = [.. m.Columns], Detectors = [.. m.Detectors], Strategy = m.Strategy, KeepLast = m.KeepLast, Mode = m.Mode } : null,
            Approval = x.Approval is { } a ? new ApprovalSpecDoc { Mode = a.Mode, Approvals = a.Approvals, Group = a.Group, TimeoutSeconds = a.TimeoutSeconds, WindowMinutes = a.WindowMinutes } : null,
        }).ToList(),
    };

    public static TrustedIssuerSpec ToSpec(TrustedIssuer t) => new()
    {
        Name = t.Name,
        Issuer = t.Issuer,
        Kind = t.Kind,
        Certificate = t.Certificate,
        Audiences = [.. t.Audiences],
        Jwks = t.StaticJwks is null ? null : JsonSerializer.Deserialize<JwksSpec>(t.StaticJwks, _compare),
        Bindings = t.Bindings.Select(b => new BindingSpec
        {
            Name = b.Name,
            Agent = b.Agent,
            Claims = b.Conditions.Select(c => new ConditionSpec
            {
                Claim = c.Claim,
                Exact = c.Match == Sidecar.Policy.Identity.ClaimMatches.Exact ? c.Values[0] : null,
                Glob = c.Match == Sidecar.Policy.Identity.ClaimMatches.Glob ? c.Values[0] : null,
                OneOf = c.Match == Sidecar.Policy.Identity.ClaimMatches.OneOf ? [.. c.Values] : null,
            }).ToList(),
        }).ToList(),
    };

    private static ConditionData ToCondition(ConditionSpec c) =>
        c.Exact is not null ? new(c.Claim!, Sidecar.Policy.Identity.ClaimMatches.Exact, [c.Exact])
        : c.Glob is not null ? new(c.Claim!, Sidecar.Policy.Identity.ClaimMatches.Glob, [c.Glob])
        : new(c.Claim!, Sidecar.Policy.Identity.ClaimMatches.OneOf, [.. c.OneOf!]);

    public static AgentSpec ToSpec(Agent a) => new()
    {
        Name = a.Name,
        Description = a.Description,
        Owner = a.Owner,
        Role = a.Role?.Name,
        Enabled = a.Enabled,
    };
}
