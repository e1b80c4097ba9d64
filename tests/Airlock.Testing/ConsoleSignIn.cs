using System.Net;
using System.Text.RegularExpressions;

namespace Airlock.Testing;

/// <summary>Signs a person in to the console through the real form (with its antiforgery token), as a browser would.</summary>
public static partial class ConsoleSignIn
{
    /// <summary>A client carrying the person's cookie, and where the sign-in redirected (throws when it was refused).</summary>
    public static async Task<(HttpClient Client, string Location)> SignInAsync(string baseUrl, string user, string password, string returnUrl = "/")
    {
        var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() };
        var client = new HttpClient(handler) { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30) };
        var form = await client.GetStringAsync("/account/login");
        var token = AntiforgeryField().Match(form).Groups[1].Value;
        var response = await client.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["userName"] = user,
            ["password"] = password,
            ["returnUrl"] = returnUrl,
            ["__RequestVerificationToken"] = token,
        }));
        if (response.StatusCode != HttpStatusCode.Redirect)
            throw new InvalidOperationException($"sign-in of {user} answered {(int)response.StatusCode}");
        return (client, response.Headers.Location!.OriginalString);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
