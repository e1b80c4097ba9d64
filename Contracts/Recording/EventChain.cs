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

/// <summary>Where and why a chain does not verify; <see cref="BrokenAt"/> is null when it does.</summary>
public sealed record ChainVerdict(long Events, long? BrokenAt, string? Reason, long SignedThrough)
{
    public bool Verifies => BrokenAt is null;
}

/// <summary>Verifies a whole recorded session: continuity, every hash, and the signed heads.</summary>
public static class ChainVerifier
{
    public static ChainVerdict Verify(IReadOnlyList<RecordingEvent> events, IReadOnlyList<ChainHeadSignature> heads, byte[] sidecarPublicKey)
    {
        var prev = EventChain.GenesisHash;
        var byHash = new Dictionary<long, string>();
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e.Seq != i + 1)
                return new ChainVerdict(events.Count, i + 1, $"event {i + 1} is missing (found seq {e.Seq})", 0);
            if (e.PrevHash != prev)
                return new ChainVerdict(events.Count, e.Seq, $"chain broken at event {e.Seq}: it does not follow event {e.Seq - 1}", 0);
            var expected = EventChain.Hash(e.PrevHash, e.Session, e.Seq, e.Time, e.Type, e.Payload);
            if (expected != e.Hash)
                return new ChainVerdict(events.Count, e.Seq, $"chain broken at event {e.Seq}: its content does not match its hash", 0);
            prev = e.Hash;
            byHash[e.Seq] = e.Hash;
        }
        long signedThrough = 0;
        using var verifier = new HeadVerifier(sidecarPublicKey);
        foreach (var head in heads.OrderBy(h => h.Seq))
        {
            if (!byHash.TryGetValue(head.Seq, out var hash) || hash != head.Hash)
                return new ChainVerdict(events.Count, head.Seq, $"signed head at event {head.Seq} does not match the chain", signedThrough);
            if (!verifier.Verify(head))
                return new ChainVerdict(events.Count, head.Seq, $"signature of the head at event {head.Seq} does not verify with the sidecar's key", signedThrough);
            signedThrough = head.Seq;
        }
        return new ChainVerdict(events.Count, null, null, signedThrough);
    }
}
