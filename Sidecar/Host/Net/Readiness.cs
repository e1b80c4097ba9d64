using System.Threading.Tasks.Sources;

namespace Airlock.Sidecar.Net;

/// <summary>
/// One direction (read or write) of a socket in an <see cref="EpollLoop"/>: remembers an edge the
/// loop reported and wakes the one waiter. The waiter runs inline on the loop's thread, like .NET's
/// inline socket completions — the relay forwards a message without a thread hop.
/// </summary>
internal sealed class Readiness : IValueTaskSource
{
    private const int Idle = 0, Ready = 1, Waiting = 2, Closed = 3;
    private int _state = Ready; // the first attempt goes straight to the syscall
    private ManualResetValueTaskSourceCore<bool> _core; // RunContinuationsAsynchronously = false: inline
    private CancellationToken _waitToken;
    // One registration per token, not per wait: a relay waits with the same token thousands of times
    // a second, and registering costs more than the wait's bookkeeping.
    private CancellationToken _registeredToken;
    private CancellationTokenRegistration _registration;

    /// <summary>The loop saw an edge (or an error/hang-up): wake the waiter, or remember it.</summary>
    public void Signal()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Idle when Interlocked.CompareExchange(ref _state, Ready, Idle) == Idle:
                case Ready or Closed:
                    return;
                case Waiting when Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting:
                    _core.SetResult(true);
                    return;
            }
        }
    }

    /// <summary>Before a syscall: takes a remembered edge; false when there is none (then wait).</summary>
    public bool TryTake()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Ready) == Ready)
            return true;
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _state) == Closed, this);
        return false;
    }

    /// <summary>After a read that filled the buffer: more may be queued without a new edge.</summary>
    public void MarkReady() => Interlocked.CompareExchange(ref _state, Ready, Idle);

    /// <summary>Until the next edge; the edge is taken. Throws when closed or <paramref name="ct"/> fires.</summary>
    public ValueTask WaitAsync(CancellationToken ct)
    {
        if (ct.CanBeCanceled && ct != _registeredToken)
        {
            _registration.Dispose();
            _registeredToken = ct;
            _registration = ct.UnsafeRegister(static state => ((Readiness)state!).Cancel(), this);
        }
        while (true)
        {
            if (TryTake())
                return ValueTask.CompletedTask;
            ct.ThrowIfCancellationRequested();
            _core.Reset();
            _waitToken = ct;
            if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Idle)
            {
                // The token may have fired between the check above and now, when there was no waiter to cancel.
                if (ct.IsCancellationRequested)
                    Cancel();
                return new ValueTask(this, _core.Version);
            }
        }
    }

    /// <summary>A waiter gives up (its token fired).</summary>
    public void Cancel()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            _core.SetException(new OperationCanceledException(_waitToken));
    }

    /// <summary>The socket is closing: the waiter (if any) gets ObjectDisposedException, later calls too.</summary>
    public void Close()
    {
        _registration.Dispose();
        if (Interlocked.Exchange(ref _state, Closed) == Waiting)
            _core.SetException(new ObjectDisposedException(nameof(NativeSocketStream)));
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
