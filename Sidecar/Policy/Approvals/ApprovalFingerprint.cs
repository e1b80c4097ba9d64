using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Airlock.Sidecar.Protocols.Sql;

namespace Airlock.Sidecar.Policy.Approvals;

/// <summary>One bound parameter as the client sent it: its format code (0 text, 1 binary) and bytes (null for NULL).</summary>
public readonly record struct BoundValue(short Format, ReadOnlyMemory<byte>? Value);

/// <summary>
/// What an approval is bound to: SHA-256 over the statement's normalized text (comments and spacing
/// dropped, keywords in one case, literals exactly as written), the parameter types its Parse declared,
/// every parameter value (format, length and bytes; NULL distinct from empty), the agent and the
/// target, each length-prefixed so no two
/// different inputs share an encoding. Approving <c>DELETE … WHERE id = $1</c> with 5 approves
/// nothing with 6; the same text re-sent with other spacing or comments is the same statement.
/// </summary>
public static class ApprovalFingerprint
{
    private static readonly byte[] Domain = "airlock-approval-v1"u8.ToArray();

    /// <param name="standardConformingStrings">How the session reads <c>'…\'…'</c> (the text is normalized as the server reads it).</param>
    /// <param name="parameterTypes">The types the statement's Parse declared for its parameters (0 or missing: inferred by the server).</param>
    public static string Of(string text, IReadOnlyList<BoundValue> parameters, IReadOnlyList<int> parameterTypes, string agent, string target, bool standardConformingStrings = true)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Field(hash, Domain);
        Field(hash, Encoding.UTF8.GetBytes(agent));
        Field(hash, Encoding.UTF8.GetBytes(target));
        Field(hash, Encoding.UTF8.GetBytes(SqlNormalizer.Normalize(text, standardConformingStrings)));
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, parameters.Count);
        hash.AppendData(header[..4]);
        BinaryPrimitives.WriteInt32BigEndian(header, parameterTypes.Count);
        hash.AppendData(header[..4]);
        foreach (var type in parameterTypes)
        {
            BinaryPrimitives.WriteInt32BigEndian(header, type);
            hash.AppendData(header[..4]);
        }
        foreach (var p in parameters)
        {
            BinaryPrimitives.WriteInt16BigEndian(header, p.Format);
            BinaryPrimitives.WriteInt32BigEndian(header[2..], p.Value is { } v ? v.Length : -1);
            hash.AppendData(header[..6]);
            if (p.Value is { } value)
                hash.AppendData(value.Span);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void Field(IncrementalHash hash, ReadOnlySpan<byte> bytes)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }
}
