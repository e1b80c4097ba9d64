using System.Security.Cryptography;
using System.Text;
using Airlock.Sidecar.ControlPlane;
using Airlock.Sidecar.Postgres;
using Airlock.Sidecar.Protocols.Postgres;
using Airlock.Sidecar.Recording;
using Airlock.Sidecar.Snapshots;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Sidecar.Tests.Postgres;

/// <summary>
/// A bug that throws inside one direction of the relay must end the session, not leave the other
/// direction waiting for a peer that is itself waiting (the agent would hang until its own timeout).
/// </summary>
public sealed class RelayFailureTests
{
    [Theory]
    [InlineData("agent")]
    [InlineData("target")]
    public async Task An_unexpected_failure_in_either_direction_ends_the_session(string failing)
    {
        var toAgent = new MemoryStream();
        var agent = new ScriptedStream(failOnRead: failing == "agent", written: toAgent);
        var target = new ScriptedStream(failOnRead: failing == "target", written: new MemoryStream());
        var relay = new PostgresRelay(agent, new UpstreamSession(target, false, 42, 7, [], (byte)'I'), new StatementLedger(64 * 1024),
            new SessionRecording(NewRecorder(), Guid.NewGuid(), TimeSpan.FromSeconds(1)), new PostgresGatewayOptions(),
            new PostgresStatementGuard(new Airlock.Sidecar.Policy.Guardrails.SqlSessionJudge(readOnlySession: false), () => null));

        var reason = await relay.RunAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.StartsWith("error: the gateway failed: InvalidCastException: scripted failure", reason, StringComparison.Ordinal);
        Assert.IsType<InvalidCastException>(relay.Failure);
        // Either way the agent hears why, as a FATAL at a message boundary: from the target→agent
        // direction when the other one failed, from its own end when it failed itself.
        var sent = toAgent.ToArray();
        Assert.Equal((byte)'E', sent[0]);
        Assert.Contains("CXX000", Encoding.ASCII.GetString(sent), StringComparison.Ordinal);
    }

    private static SessionRecorder NewRecorder()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pkcs8 = key.ExportPkcs8PrivateKey();
        var identity = new SidecarIdentity("sidecar", "test", "credential", "http://127.0.0.1:1", "http://127.0.0.1:1", [], pkcs8, pkcs8);
        var state = Directory.CreateTempSubdirectory("airlock-relay-test-").FullName;
        return new SessionRecorder(identity, new SidecarOptionsSnapshot(state), TimeProvider.System, NullLogger<SessionRecorder>.Instance);
    }

    /// <summary>A peer that sends nothing: a read waits until cancelled, or throws at once when scripted to fail.</summary>
    private sealed class ScriptedStream(bool failOnRead, MemoryStream written) : Stream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (failOnRead)
                throw new InvalidCastException("scripted failure");
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (written)
                written.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    }
}
