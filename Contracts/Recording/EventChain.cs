using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Airlock.Contracts.Hubs;

namespace Airlock.Contracts.Recording;

/// <summary>
/// The hash chain of a recorded session, shared by the sidecar (which extends it), the control
/// plane (which verifies on ingest and replay) and the offline bundle verifier. Pure: bytes in,
/// hashes out.
/// <code>
/// canonical(e) = "airlock-event-v1\n" session "\n" seq "\n" unix-ms(time) "\n" type "\n" payload
/// hash(e)      = SHA-256( raw(prevHash) ‖ canonical(e) )      prevHash of seq 1 = 64 × "0"
/// head         = ECDSA-P256-SHA256( "airlock-chain-head-v1\n" session "\n" seq "\n" hash )
/// </code>
/// </summary>
public static class EventChain
{
    public const string GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

    public static byte[] Canonical(Guid session, long seq, DateTimeOffset time, string type, ReadOnlySpan<byte> payload)
    {
        var header = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"airlock-event-v1\n{session:D}\n{seq}\n{time.ToUnixTimeMilliseconds()}\n{type}\n"));
        var bytes = new byte[header.Length + payload.Length];
        header.CopyTo(bytes, 0);
        payload.CopyTo(bytes.AsSpan(header.Length));
        return bytes;
    }

    public static string Hash(string prevHash, Guid session, long seq, DateTimeOffset time, string type, ReadOnlySpan<byte> payload)
    {
        Span<byte> prev = stackalloc byte[32];
        if (Convert.FromHexString(prevHash, prev, out _, out var prevLength) != System.Buffers.OperationStatus.Done || prevLength != 32)
            prev = Encoding.UTF8.GetBytes(prevHash); // not a SHA-256 in hex (tampered input): hashed as text, so it cannot match
        Span<byte> typeBytes = stackalloc byte[256];
        typeBytes = Encoding.UTF8.TryGetBytes(type, typeBytes, out var typeLength) ? typeBytes[..typeLength] : Encoding.UTF8.GetBytes(type);
        Span<byte> digest = stackalloc byte[32];
        Hash(prev, session, seq, time.ToUnixTimeMilliseconds(), typeBytes, payload, digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>
    /// The same hash over raw bytes: the previous hash as 32 bytes, the type as UTF-8. The recorder
    /// and the control plane's ingest call this for every event, so it builds nothing on the heap:
    /// small events (nearly all) are assembled in one buffer and hashed with one append to a reused
    /// hash object (a one-shot <c>SHA256.HashData</c> creates and frees an OpenSSL digest context per
    /// call, 20% dearer for a typical 300-byte event, more with cold caches).
    /// </summary>
    public static void Hash(ReadOnlySpan<byte> prevHash, Guid session, long seq, long unixMilliseconds, ReadOnlySpan<byte> typeUtf8, ReadOnlySpan<byte> payload, Span<byte> digest)
    {
        // A reused buffer, not stackalloc: a stack buffer this size is zeroed on every call, which cost
        // more than hashing a small event.
        // Checked first: the reused hash object must never keep a half-appended event after a throw.
        ArgumentOutOfRangeException.ThrowIfLessThan(digest.Length, SHA256.HashSizeInBytes, nameof(digest));
        Span<byte> input = t_input ??= new byte[OneShotLimit];
        prevHash.CopyTo(input);
        var headerAt = prevHash.Length;
        if (!System.Text.Unicode.Utf8.TryWrite(input[headerAt..(headerAt + 96)], CultureInfo.InvariantCulture, $"airlock-event-v1\n{session:D}\n{seq}\n{unixMilliseconds}\n", out var written))
            throw new InvalidOperationException("an event header is at most 96 bytes");
        var at = headerAt + written;
        if (at + typeUtf8.Length + 1 + payload.Length <= OneShotLimit)
        {
            typeUtf8.CopyTo(input[at..]);
            at += typeUtf8.Length;
            input[at++] = (byte)'\n';
            payload.CopyTo(input[at..]);
            var hash = t_sha ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(input[..(at + payload.Length)]);
            hash.GetHashAndReset(digest);
            return;
        }
        var sha = t_sha ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(input[..at]);
        sha.AppendData(typeUtf8);
        sha.AppendData("\n"u8);
        sha.AppendData(payload);
        sha.GetHashAndReset(digest);
    }

    private const int OneShotLimit = 8 * 1024;

    [ThreadStatic]
    private static IncrementalHash? t_sha;

    [ThreadStatic]
    private static byte[]? t_input;

    /// <summary>Creates the next event of a chain; time is truncated to the millisecond the hash covers.</summary>
    public static RecordingEvent Next(RecordingEvent? previous, Guid session, DateTimeOffset time, string type, byte[] payload)
    {
        var seq = (previous?.Seq ?? 0) + 1;
        var prev = previous?.Hash ?? GenesisHash;
        var at = DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());
        return new RecordingEvent(session, seq, at, type, payload, prev, Hash(prev, session, seq, at, type, payload));
    }

    public static byte[] HeadInput(Guid session, long seq, string hash) =>
        Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"airlock-chain-head-v1\n{session:D}\n{seq}\n{hash}"));

    public static ChainHeadSignature SignHead(RecordingEvent head, ECDsa sidecarKey) => SignHead(head.Session, head.Seq, head.Hash, sidecarKey);

    public static ChainHeadSignature SignHead(Guid session, long seq, string hash, ECDsa sidecarKey) =>
        new(session, seq, hash, sidecarKey.SignData(HeadInput(session, seq, hash), HashAlgorithmName.SHA256));
}

/// <summary>
/// Verifies chain heads with one sidecar's public key, imported once: importing the key costs more
/// than a verification, and a batch or a replay checks many heads of the same sidecar.
/// A key that cannot be imported verifies nothing.
/// </summary>
public sealed class HeadVerifier : IDisposable
{
    private readonly ECDsa? _key;

    public HeadVerifier(byte[]? sidecarPublicKey)
    {
        if (sidecarPublicKey is null)
            return;
        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(sidecarPublicKey, out _);
            _key = key;
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException)
        {
            key.Dispose();
        }
    }

    public bool Verify(ChainHeadSignature head)
    {
        if (_key is null)
            return false;
        try
        {
            return _key.VerifyData(EventChain.HeadInput(head.Session, head.Seq, head.Hash), head.Signature, HashAlgorithmName.SHA256);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose() => _key?.Dispose();
}

/// <summary>
/// Where and why a chain does not verify; <see cref="BrokenAt"/> is null when it does.
/// <see cref="SignedEnd"/>: the last event is the session's end and a sidecar signature covers it —
/// only then is the session <see cref="SessionVerification.Verified"/>; otherwise, unbroken, it is
/// <see cref="SessionVerification.Incomplete"/> (a recording cut after any flush is not "verified").
/// </summary>
public sealed record ChainVerdict(long Events, long? BrokenAt, string? Reason, long SignedThrough, bool SignedEnd = false)
{
    public bool Verifies => BrokenAt is null;

    public string Status => SessionVerification.Of(Verifies, SignedEnd);
}

/// <summary>What a stored session's chain says about it.</summary>
public static class SessionVerification
{
    /// <summary>Every event hashed and linked, and a sidecar signature covers its session end.</summary>
    public const string Verified = "verified";
    /// <summary>Unbroken so far, but its signed session end is not (yet) stored: still live, or cut.</summary>
    public const string Incomplete = "incomplete";
    /// <summary>An event does not follow the chain or a signature does not verify.</summary>
    public const string Broken = "broken";

    public static string Of(bool verifies, bool signedEnd) => !verifies ? Broken : signedEnd ? Verified : Incomplete;
}

/// <summary>
/// Verifies a whole recorded session — continuity, every hash, the signed heads, and whether a
/// signature covers its end — one event at a time, so a session of any length is verified in
/// bounded memory (the heads are kept; they are few).
/// </summary>
public sealed class ChainVerifier : IDisposable
{
    private readonly Dictionary<long, ChainHeadSignature> _heads = [];
    private readonly HeadVerifier _verifier;
    private string _prev = EventChain.GenesisHash;
    private long _events;
    private long _signedThrough;
    private string? _lastType;
    private ChainVerdict? _broken;

    public ChainVerifier(IEnumerable<ChainHeadSignature> heads, byte[]? sidecarPublicKey)
    {
        foreach (var head in heads)
            _heads[head.Seq] = head;
        _verifier = new HeadVerifier(sidecarPublicKey);
    }

    /// <summary>Checks the next event; false once the chain is broken (further events are ignored).</summary>
    public bool Add(RecordingEvent e)
    {
        if (_broken is not null)
            return false;
        var seq = _events + 1;
        if (e.Seq != seq)
            return Break(seq, $"event {seq} is missing (found seq {e.Seq})");
        if (e.PrevHash != _prev)
            return Break(e.Seq, $"chain broken at event {e.Seq}: it does not follow event {e.Seq - 1}");
        if (EventChain.Hash(e.PrevHash, e.Session, e.Seq, e.Time, e.Type, e.Payload) != e.Hash)
            return Break(e.Seq, $"chain broken at event {e.Seq}: its content does not match its hash");
        _events = seq;
        _prev = e.Hash;
        _lastType = e.Type;
        if (_heads.Remove(e.Seq, out var head))
        {
            if (head.Hash != e.Hash)
                return Break(head.Seq, $"signed head at event {head.Seq} does not match the chain");
            if (!_verifier.Verify(head))
                return Break(head.Seq, $"signature of the head at event {head.Seq} does not verify with the sidecar's key");
            _signedThrough = head.Seq;
        }
        return true;
    }

    /// <summary>The verdict over the events added; heads beyond the last event do not match the chain.</summary>
    public ChainVerdict Finish()
    {
        if (_broken is not null)
            return _broken;
        if (_heads.Count > 0)
        {
            var first = _heads.Keys.Min();
            return new ChainVerdict(_events, first, $"signed head at event {first} does not match the chain", _signedThrough);
        }
        return new ChainVerdict(_events, null, null, _signedThrough, _lastType == RecordingEventTypes.SessionEnd && _signedThrough == _events && _events > 0);
    }

    private bool Break(long at, string reason)
    {
        _broken = new ChainVerdict(_events, at, reason, _signedThrough);
        return false;
    }

    public static ChainVerdict Verify(IReadOnlyList<RecordingEvent> events, IReadOnlyList<ChainHeadSignature> heads, byte[]? sidecarPublicKey)
    {
        using var verifier = new ChainVerifier(heads, sidecarPublicKey);
        foreach (var e in events)
            if (!verifier.Add(e))
                break;
        var verdict = verifier.Finish();
        return verdict with { Events = Math.Max(verdict.Events, events.Count) };
    }

    public void Dispose() => _verifier.Dispose();
}
