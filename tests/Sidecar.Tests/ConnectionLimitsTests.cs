using System.Net;
using Airlock.Sidecar.Gateway;

namespace Airlock.Sidecar.Tests;

public sealed class ConnectionLimitsTests
{
    [Theory]
    [InlineData("2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::9")] // one /64: one source
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")]                // IPv4-mapped is the IPv4 address
    public void Addresses_of_one_source_share_its_startup_share(string first, string second)
    {
        var limits = new ConnectionLimits(new ConnectionLimitOptions { MaxPendingStartupsPerAddress = 1 });
        Assert.Equal(Admission.Admitted, limits.TryStartup(IPAddress.Parse(first), out var lease));
        Assert.Equal(Admission.TooManyPendingStartupsFromAddress, limits.TryStartup(IPAddress.Parse(second), out _));
        lease!.Dispose();
        lease.Dispose(); // given back once
        Assert.Equal(Admission.Admitted, limits.TryStartup(IPAddress.Parse(second), out _));
        Assert.Equal(1, limits.PendingStartups);
    }

    [Fact]
    public void Different_sources_and_the_global_cap_are_counted_apart()
    {
        var limits = new ConnectionLimits(new ConnectionLimitOptions { MaxPendingStartupsPerAddress = 1, MaxPendingStartups = 2 });
        Assert.Equal(Admission.Admitted, limits.TryStartup(IPAddress.Parse("192.0.2.1"), out _));
        Assert.Equal(Admission.Admitted, limits.TryStartup(IPAddress.Parse("2001:db8:9::1"), out _));
        Assert.Equal(Admission.TooManyPendingStartups, limits.TryStartup(IPAddress.Parse("192.0.2.2"), out _));
    }
}
