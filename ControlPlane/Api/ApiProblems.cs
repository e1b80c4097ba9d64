using Airlock.ControlPlane.Policies;
using Airlock.ControlPlane.Sidecars;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Airlock.ControlPlane.Api;

/// <summary>RFC 9457 problem responses for the API's expected failures.</summary>
internal static class ApiProblems
{
    public static IResult Validation(IReadOnlyList<PolicyError> errors, string title = "The document is invalid; nothing was applied") =>
        Results.Problem(
            statusCode: StatusCodes.Status400BadRequest,
            title: title,
            detail: $"{errors.Count} error(s): " + string.Join("; ", errors.Take(5).Select(e => $"{e.Path}: {e.Message}")),
            type: "https://airlock.dev/problems/validation",
            extensions: new Dictionary<string, object?> { ["errors"] = errors });

    public static IResult NotFound(string what) =>
        Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"{what} does not exist");
}

/// <summary>Turns <see cref="ApiProblemException"/> into a problem response instead of a 500.</summary>
internal sealed class ApiProblemExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not ApiProblemException problem)
            return false;
        httpContext.Response.StatusCode = problem.Status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = new ProblemDetails { Status = problem.Status, Title = problem.Title, Detail = problem.Message },
        });
    }
}

internal static class RequestBody
{
    public const long MaxDocumentBytes = 4 * 1024 * 1024;

    /// <summary>Reads a JSON or YAML body (by Content-Type) into <typeparamref name="T"/>, reporting syntax errors with their position.</summary>
    public static async Task<(T? Value, IResult? Problem)> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (request.ContentLength > MaxDocumentBytes)
            return (null, Results.Problem(statusCode: 413, title: "Document too large", detail: $"at most {MaxDocumentBytes} bytes"));
        using var reader = new StreamReader(request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (text.Length > MaxDocumentBytes)
            return (null, Results.Problem(statusCode: 413, title: "Document too large", detail: $"at most {MaxDocumentBytes} bytes"));
        var (value, error) = PolicyFormat.Parse<T>(text, PolicyFormat.IsYaml(request.ContentType));
        return error is null ? (value, null) : (null, ApiProblems.Validation([error], "The document cannot be parsed; nothing was applied"));
    }
}
