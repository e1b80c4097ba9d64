using System.Security.Cryptography;
using Airlock.Sidecar.Policy;

namespace Airlock.Sidecar.Policy.Tests;

public sealed class SnapshotVerifierTests : IDisposable
{
    private const string SidecarId = "0b3c2c7e-5f7e-4c1b-9d39-3f0e6c1b8a11";
    private static readonly DateTimeOffset _now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly SnapshotKey[] _trusted;

    public SnapshotVerifierTests() => _trusted = [new SnapshotKey("k1", _key.ExportSubjectPublicKeyInfo())];

    public void Dispose()
    {
        _key.Dispose();
        _otherKey.Dispose();
    }

    private static PolicySnapshot Content(string sidecarId = SidecarId, string target = "orders") => new(
        sidecarId,
        "edge-1",
        [new TargetPolicy(target, "postgres", new Dictionary<string, string> { ["env"] = "prod" }, 6432,
            new UpstreamPolicy("db.internal", 5432, "orders", "airlock", "prefer", "env:PG_PASSWORD", null))],
        [new RolePolicy("reader", [target], [new RulePolicy("no-ddl", "block", [], new RuleMatch(["ddl"], [], [], null), "DDL is not allowed", null, null)])],
        [new AgentPolicy("a-1", "ci-deploy", "reader", true)],
        []);

    private SignedSnapshot Sign(long version, DateTimeOffset? issued = null, int ttl = 3600, PolicySnapshot? content = null, ECDsa? key = null, string keyId = "k1") =>
        SnapshotCodec.Sign(content ?? Content(), version, issued ?? _now.AddMinutes(-1), ttl, keyId, key ?? _key);

    private SnapshotCheck Check(SignedSnapshot candidate, SignedSnapshot? current = null) =>
        SnapshotVerifier.Check(candidate, SidecarId, _trusted, current, _now);

    [Fact]
    public void A_fresh_snapshot_signed_by_a_trusted_key_is_accepted_and_decoded()
    {
        var check = Check(Sign(1));
        Assert.Equal(SnapshotVerdict.Accepted, check.Verdict);
        Assert.Equal("orders", check.Snapshot!.Targets[0].Name);
        Assert.Equal("env:PG_PASSWORD", check.Snapshot.Targets[0].Upstream.CredentialReference);
        Assert.Equal("DDL is not allowed", check.Snapshot.Roles[0].Rules[0].Message);
    }

    public static TheoryData<string, Func<SignedSnapshot, SignedSnapshot>, string> Tampering => new()
    {
        { "payload edited", s => s with { Payload = Edit(s.Payload, "orders", "ordars") }, "does not match its signed content hash" },
        { "payload and hash edited", s => s with { Payload = Edit(s.Payload, "orders", "ordars"), ContentHash = SnapshotCodec.Hash(Edit(s.Payload, "orders", "ordars")) }, "signature does not verify" },
        { "version raised", s => s with { Version = s.Version + 100 }, "signature does not verify" },
        { "TTL extended", s => s with { TtlSeconds = s.TtlSeconds * 10 }, "signature does not verify" },
        { "issued later", s => s with { IssuedAt = s.IssuedAt.AddMinutes(30) }, "signature does not verify" },
        { "signature flipped", s => s with { Signature = Flip(s.Signature) }, "signature does not verify" },
        { "signature empty", s => s with { Signature = [] }, "signature does not verify" },
        { "unknown key id", s => s with { KeyId = "k2" }, "unknown key 'k2'" },
        { "other sidecar", s => s with { SidecarId = "someone-else" }, "is for sidecar 'someone-else'" },
        { "zero TTL", s => s with { TtlSeconds = 0 }, "TTL must be positive" },
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public void A_tampered_snapshot_is_rejected_with_the_reason(string _, Func<SignedSnapshot, SignedSnapshot> tamper, string reason)
    {
        var check = Check(tamper(Sign(5)));
        Assert.Equal(SnapshotVerdict.Rejected, check.Verdict);
        Assert.Contains(reason, check.Reason);
        Assert.Null(check.Snapshot);
    }

    [Fact]
    public void A_snapshot_signed_by_an_untrusted_key_under_a_trusted_key_id_is_rejected() =>
        Assert.Contains("signature does not verify", Check(Sign(1, key: _otherKey)).Reason);

    [Fact]
    public void A_payload_naming_another_sidecar_is_rejected_even_when_the_envelope_is_signed_for_us()
    {
        var payload = SnapshotCodec.Encode(Content(sidecarId: "someone-else"));
        var check = Check(SignRaw(payload, version: 1));
        Assert.Contains("payload names another sidecar", check.Reason);
    }

    [Fact]
    public void A_signed_payload_for_another_sidecar_relabelled_for_us_fails_the_signature()
    {
        var forOther = SnapshotCodec.Sign(Content("other"), 1, _now, 60, "k1", _key);
        Assert.Equal(SnapshotVerdict.Rejected, Check(forOther with { SidecarId = SidecarId }).Verdict);
    }

    [Fact]
    public void An_expired_snapshot_is_rejected() =>
        Assert.Contains("expired", Check(Sign(1, issued: _now.AddHours(-2), ttl: 3600)).Reason);

    [Fact]
    public void A_snapshot_from_the_far_future_is_rejected() =>
        Assert.Contains("issued in the future", Check(Sign(1, issued: _now.AddHours(1))).Reason);

    [Fact]
    public void Small_clock_skew_is_tolerated() =>
        Assert.Equal(SnapshotVerdict.Accepted, Check(Sign(1, issued: _now.AddMinutes(2))).Verdict);

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void An_older_or_equal_version_is_a_replay(long version)
    {
        var current = Sign(5);
        var replay = Sign(version, content: Content(target: "changed"));
        var check = Check(replay, current);
        Assert.Equal(SnapshotVerdict.Rejected, check.Verdict);
        Assert.Contains("not newer", check.Reason);
    }

    [Fact]
    public void The_same_version_resent_unchanged_is_a_replay_not_a_refresh()
    {
        var current = Sign(5);
        Assert.Equal(SnapshotVerdict.Rejected, Check(current, current).Verdict);
    }

    [Fact]
    public void The_same_content_re_signed_later_refreshes_the_expiry()
    {
        var current = Sign(5, issued: _now.AddMinutes(-30));
        var check = Check(Sign(5, issued: _now.AddMinutes(-1)), current);
        Assert.Equal(SnapshotVerdict.Refreshed, check.Verdict);
    }

    [Fact]
    public void A_newer_version_is_accepted_over_the_current_one() =>
        Assert.Equal(SnapshotVerdict.Accepted, Check(Sign(6, content: Content(target: "changed")), Sign(5)).Verdict);

    [Fact]
    public void A_garbage_payload_signed_by_the_trusted_key_is_rejected_not_thrown() =>
        Assert.Contains("not a valid snapshot", Check(SignRaw("not json"u8.ToArray(), version: 1)).Reason);

    /// <summary>Signs an arbitrary payload as if for this sidecar: the control plane's key used wrongly.</summary>
    private SignedSnapshot SignRaw(byte[] payload, long version)
    {
        var hash = SnapshotCodec.Hash(payload);
        var signature = _key.SignData(SnapshotCodec.SigningInput(SidecarId, version, hash, _now, 60), HashAlgorithmName.SHA256);
        return new SignedSnapshot(SidecarId, version, hash, _now, 60, payload, "k1", signature);
    }

    [Fact]
    public void Encoding_is_canonical_equal_content_gives_equal_hash() =>
        Assert.Equal(SnapshotCodec.Hash(SnapshotCodec.Encode(Content())), SnapshotCodec.Hash(SnapshotCodec.Encode(Content())));

    private static byte[] Edit(byte[] payload, string from, string to) =>
        System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(payload).Replace(from, to, StringComparison.Ordinal));

    private static byte[] Flip(byte[] signature)
    {
        var copy = (byte[])signature.Clone();
        copy[^1] ^= 0x01;
        return copy;
    }
}
