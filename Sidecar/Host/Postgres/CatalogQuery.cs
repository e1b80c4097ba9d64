using System.Buffers;
using System.Text;
using Airlock.Sidecar.Policy;
using Airlock.Sidecar.Protocols.Postgres;

namespace Airlock.Sidecar.Postgres;

/// <summary>
/// Reads a target's catalog on a connection of the sidecar's own (the target's credential, read-only,
/// UTF8; never an agent's session): one simple query, its result sets as rows of text values.
/// </summary>
internal static class CatalogQuery
{
    private const int MaxMessageBytes = 16 * 1024 * 1024;

    /// <summary>The most a catalog answer may hold, in bytes of rows: a target that sends more is refused (fail closed), not buffered.</summary>
    public const long MaxAnswerBytes = 256L * 1024 * 1024;

    public static async Task<List<List<string?[]>>> RunAsync(UpstreamConnector connector, TargetPolicy target, string sql, CancellationToken ct)
    {
        var session = await connector.ConnectAsync(target, [new("application_name", "airlock-catalog"), new("default_transaction_read_only", "on"), new("client_encoding", "UTF8")], ct);
        await using var stream = session.Stream;
        var query = new ArrayBufferWriter<byte>();
        var body = new ArrayBufferWriter<byte>();
        PgWire.WriteCString(body, sql);
        PgWire.WriteMessage(query, (byte)'Q', body.WrittenSpan);
        PgWire.WriteMessage(query, (byte)'X', []);
        await stream.WriteAsync(query.WrittenMemory, ct);
        await stream.FlushAsync(ct);

        var results = new List<List<string?[]>>();
        long answered = 0;
        List<string?[]>? current = null;
        using var input = new FrameBuffer();
        var needed = 0;
        while (true)
        {
            if (await input.FillAsync(stream, needed, ct) == 0)
                throw new IOException("the target closed the catalog connection");
            needed = 0;
            while (true)
            {
                var status = PgWire.TryReadHeader(input.Span, MaxMessageBytes, out var type, out var length);
                if (status == FrameStatus.Incomplete)
                {
                    needed = length == 0 ? 5 : 1 + length;
                    break;
                }
                if (status == FrameStatus.Invalid)
                    throw new PgProtocolException($"invalid message from the target (length {length})");
                var message = input.Span.Slice(5, length - 4);
                switch (type)
                {
                    case (byte)'T':
                        results.Add(current = []);
                        break;
                    case (byte)'D':
                    {
                        if ((answered += length) > MaxAnswerBytes)
                            throw new PgProtocolException($"the catalog answer is over {MaxAnswerBytes / (1024 * 1024)} MB");
                        var reader = new PgReader(message);
                        var row = new string?[reader.ReadCount16()];
                        for (var i = 0; i < row.Length; i++)
                        {
                            var value = reader.ReadValue(out var isNull);
                            row[i] = isNull ? null : Encoding.UTF8.GetString(value);
                        }
                        (current ?? throw new PgProtocolException("a catalog row before its description")).Add(row);
                        break;
                    }
                    case (byte)'E':
                        throw new PgProtocolException("the catalog query failed: " + StatementLedger.ReadError(message).Message);
                    case (byte)'Z':
                        return results;
                }
                input.Consume(1 + length);
            }
        }
    }

    /// <summary>An escape string literal: right whatever the target's standard_conforming_strings.</summary>
    public static string Literal(string value) => "E'" + value.Replace("\\", "\\\\").Replace("'", "''") + "'";

    public static string List(IEnumerable<string> values) => string.Join(", ", values.Select(Literal).DefaultIfEmpty("NULL"));
}
