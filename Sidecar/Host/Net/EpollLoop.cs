using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Airlock.Sidecar.Net;

/// <summary>
/// An epoll instance and the thread that waits on it, like pgbouncer's event loop. Sockets are
/// registered once, edge-triggered for reading and writing; each edge goes to the socket's
/// <see cref="Readiness"/>, whose waiter then runs on this thread.
/// <para>
/// Why not .NET's socket engine: it tries every receive before waiting for readiness, so a proxy that
/// reads again right after forwarding pays a failed <c>recv</c> (EAGAIN) per message and direction —
/// half of the sidecar's receives under pgbench. Here a socket is read only after an edge, or when
/// the previous read filled the buffer.
/// </para>
/// </summary>
internal sealed unsafe class EpollLoop
{
    private const int BatchSize = 256;
    private static readonly Lazy<EpollLoop[]> Loops = new(() =>
        [.. Enumerable.Range(0, Math.Max(1, Environment.ProcessorCount / 4)).Select(i => new EpollLoop(i))]);
    private static int _next;
    private static long _nextId;

    private readonly int _epfd;
    private readonly ConcurrentDictionary<ulong, NativeSocketStream> _sockets = new();

    private EpollLoop(int index)
    {
        _epfd = Libc.epoll_create1(Libc.EpollCloexec);
        if (_epfd < 0)
            throw new IOException($"epoll_create1 failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        new Thread(Run) { IsBackground = true, Name = $"airlock-epoll-{index}" }.Start();
    }

    /// <summary>Loops share the sockets round-robin (one loop per four cores).</summary>
    public static EpollLoop Next()
    {
        var loops = Loops.Value;
        return loops[(int)((uint)Interlocked.Increment(ref _next) % (uint)loops.Length)];
    }

    public ulong Register(int fd, NativeSocketStream socket)
    {
        var id = (ulong)Interlocked.Increment(ref _nextId);
        _sockets[id] = socket;
        if (Libc.EpollAdd(_epfd, fd, Libc.EpollIn | Libc.EpollOut | Libc.EpollRdHup | Libc.EpollEt, id) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            _sockets.TryRemove(id, out _);
            throw new IOException($"epoll_ctl(ADD) failed: {Marshal.GetPInvokeErrorMessage(error)}");
        }
        return id;
    }

    /// <summary>Before the descriptor closes. An edge already fetched for it finds no socket and is dropped.</summary>
    public void Unregister(int fd, ulong id)
    {
        Libc.EpollDelete(_epfd, fd);
        _sockets.TryRemove(id, out _);
    }

    private void Run()
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(BatchSize * Libc.EpollEventSize));
        while (true)
        {
            var count = Libc.epoll_wait(_epfd, events, BatchSize, -1);
            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == Libc.EINTR)
                    continue;
                Environment.FailFast($"epoll_wait failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
            for (var i = 0; i < count; i++)
            {
                var (flags, id) = Libc.ReadEvent(events, i);
                if (!_sockets.TryGetValue(id, out var socket))
                    continue;
                try
                {
                    socket.OnEvents(flags); // runs the woken reader or writer inline
                }
                catch (Exception e)
                {
                    // Async continuations keep their exceptions in their tasks; anything escaping is a
                    // bug, and must not stop the loop every other session depends on.
                    Console.Error.WriteLine($"epoll loop: a socket continuation failed: {e}");
                }
            }
        }
    }
}
