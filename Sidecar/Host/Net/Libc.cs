using System.Runtime.InteropServices;

namespace Airlock.Sidecar.Net;

/// <summary>The few Linux calls the native socket path makes (epoll, non-blocking recv/send/connect).</summary>
internal static unsafe partial class Libc
{
    public const int EAGAIN = 11, EINTR = 4, EINPROGRESS = 115;
    public const int EpollCloexec = 0x80000, EpollCtlAdd = 1, EpollCtlDel = 2;
    public const uint EpollIn = 0x1, EpollOut = 0x4, EpollErr = 0x8, EpollHup = 0x10, EpollRdHup = 0x2000, EpollEt = 1u << 31;
    private const int FGetFl = 3, FSetFl = 4, ONonBlock = 0x800, MsgNoSignal = 0x4000, SolSocket = 1, SoError = 4;

    /// <summary>struct epoll_event is packed on x86 (12 bytes) and naturally aligned elsewhere (16 bytes).</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 ? 12 : 16;
    private static readonly int EpollDataOffset = EpollEventSize == 12 ? 4 : 8;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int connect(int fd, byte* address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getpeername(int fd, byte* address, int* length);

    /// <summary>Whether the socket has a peer (a non-blocking connect finished).</summary>
    public static bool IsConnected(int fd)
    {
        var address = stackalloc byte[128];
        var length = 128;
        return getpeername(fd, address, &length) == 0;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int shutdown(int fd, int how);

    /// <summary>Sends FIN now, so a peer reading sees the end before any reset that closing with unread input causes.</summary>
    public static void ShutdownBoth(int fd) => shutdown(fd, 2);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, int* value, int* length);

    public static int EpollAdd(int epfd, int fd, uint events, ulong data)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + EpollDataOffset) = data;
        return epoll_ctl(epfd, EpollCtlAdd, fd, ev);
    }

    public static int EpollDelete(int epfd, int fd)
    {
        var ev = stackalloc byte[16]; // ignored by DEL, but old kernels want a non-null pointer
        return epoll_ctl(epfd, EpollCtlDel, fd, ev);
    }

    public static (uint Events, ulong Data) ReadEvent(byte* events, int index)
    {
        var ev = events + index * EpollEventSize;
        return (*(uint*)ev, *(ulong*)(ev + EpollDataOffset));
    }

    /// <summary>Bytes received, 0 at end of stream, or -errno.</summary>
    public static nint Receive(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var n = recv(fd, p, buffer.Length, 0);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Bytes sent or -errno (no SIGPIPE when the peer is gone).</summary>
    public static nint Send(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var n = send(fd, p, buffer.Length, MsgNoSignal);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    public static int SetNonBlocking(int fd)
    {
        var flags = fcntl(fd, FGetFl, 0);
        return flags < 0 || fcntl(fd, FSetFl, flags | ONonBlock) < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    /// <summary>Starts a non-blocking connect: 0 when connected, EINPROGRESS while it goes on, else errno.</summary>
    public static int StartConnect(int fd, System.Net.IPEndPoint endpoint)
    {
        // sockaddr_in / sockaddr_in6 as Linux lays them out.
        var address = stackalloc byte[28];
        new Span<byte>(address, 28).Clear();
        var ip = endpoint.Address.GetAddressBytes();
        int length;
        if (ip.Length == 4)
        {
            *(ushort*)address = 2; // AF_INET
            ip.CopyTo(new Span<byte>(address + 4, 4));
            length = 16;
        }
        else
        {
            *(ushort*)address = 10; // AF_INET6
            ip.CopyTo(new Span<byte>(address + 8, 16));
            *(uint*)(address + 24) = (uint)endpoint.Address.ScopeId;
            length = 28;
        }
        address[2] = (byte)(endpoint.Port >> 8);
        address[3] = (byte)endpoint.Port;
        return connect(fd, address, length) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>The pending error of a socket (SO_ERROR): 0 once a non-blocking connect succeeded.</summary>
    public static int PendingError(int fd)
    {
        int value = 0, length = sizeof(int);
        return getsockopt(fd, SolSocket, SoError, &value, &length) == 0 ? value : Marshal.GetLastPInvokeError();
    }
}
