namespace Airlock.Contracts.Hubs;

/// <summary>
/// Methods a sidecar calls on the control plane's <c>SidecarHub</c> (path <see cref="SidecarHubPaths.Hub"/>).
/// The connection is authenticated with the sidecar credential as the access token.
/// </summary>
public interface ISidecarHub
{
    /// <summary>Liveness and status; the control plane records last seen and the applied version.</summary>
    Task Heartbeat(SidecarHeartbeat heartbeat);

    /// <summary>
    /// Uploads a batch of recording events. The returned acknowledgement is sent only after the
    /// control plane's transaction has committed; the sidecar deletes spooled events up to it.
    /// </summary>
    Task<RecordingAck> UploadRecording(RecordingBatch batch);

    /// <summary>Opens a just-in-time approval request for a held or refused statement.</summary>
    Task<ApprovalTicket> RequestApproval(ApprovalRequest request);

    /// <summary>What became of a decided (or undecided) request at the sidecar; also acknowledges the decision's delivery.</summary>
    Task ApprovalSettled(ApprovalSettlement settlement);

    /// <summary>The result of a connection test the control plane asked for (<see cref="ISidecarClient.TestTarget"/>).</summary>
    Task TargetTested(TargetTestResult result);
}

/// <summary>Methods the control plane calls on a connected sidecar.</summary>
public interface ISidecarClient
{
    /// <summary>An approval request was decided (approved, denied or expired).</summary>
    Task ApprovalDecided(ApprovalDecision decision);

    /// <summary>An admin terminated a live session; the sidecar closes it with a FATAL naming the reason.</summary>
    Task TerminateSession(TerminateSessionCommand command);

    /// <summary>An admin asks whether the sidecar can reach and log in to one of its targets; it answers with <see cref="ISidecarHub.TargetTested"/>.</summary>
    Task TestTarget(TargetTestRequest request);
}

public static class SidecarHubPaths
{
    public const string Hub = "/hubs/sidecar";
}
