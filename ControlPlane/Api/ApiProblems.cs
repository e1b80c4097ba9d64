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

    /// <summary>
    /// 409 for a write based on a version that is no longer the stored one, saying who changed it:
    /// <paramref name="what"/> names the object ("role 'reader'") or the whole policy.
    /// </summary>
    public static IResult Conflict(string what, long? basedOn, PolicyObjectVersion current, string redo) =>
        Results.Problem(
            statusCode: StatusCodes.Status409Conflict,
            title: "Changed since you read it",
            detail: $"{what} is no longer the version your change was based on ({basedOn}): {current.Describe()}. {redo}",
            type: "https://airlock.dev/problems/edit-conflict",
            extensions: new Dictionary<string, object?>
            {
                ["currentVersion"] = current.Version,
                ["changedBy"] = current.Actor,
                ["changedAt"] = current.At,
                ["change"] = current.Action,
            });

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
    /// <summary>Reads a JSON Merge Patch body (RFC 7396): a JSON object.</summary>
    public static async Task<(System.Text.Json.Nodes.JsonObject? Patch, IResult? Problem)> ReadMergePatchAsync(HttpRequest request, CancellationToken ct)
    {
        if (PolicyFormat.IsYaml(request.ContentType))
            return (null, Results.Problem(statusCode: 415, title: "PATCH takes JSON",
                detail: "send a JSON merge patch (application/merge-patch+json); PUT takes YAML"));
        if (request.ContentLength > MaxDocumentBytes)
            return (null, Results.Problem(statusCode: 413, title: "Document too large", detail: $"at most {MaxDocumentBytes} bytes"));
        using var reader = new StreamReader(request.Body);
        var text = await reader.ReadToEndAsync(ct);
        if (text.Length > MaxDocumentBytes)
            return (null, Results.Problem(statusCode: 413, title: "Document too large", detail: $"at most {MaxDocumentBytes} bytes"));
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(text) is System.Text.Json.Nodes.JsonObject patch
                ? (patch, null)
                : (null, ApiProblems.Validation([new PolicyError("$", "a merge patch is a JSON object")], "The patch cannot be parsed; nothing was applied"));
        }
        catch (System.Text.Json.JsonException e)
        {
            return (null, ApiProblems.Validation([new PolicyError("$", e.Message)], "The patch cannot be parsed; nothing was applied"));
        }
    }

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
