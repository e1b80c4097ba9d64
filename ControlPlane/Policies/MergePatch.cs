using System.Text.Json.Nodes;

namespace Airlock.ControlPlane.Policies;

/// <summary>
/// JSON Merge Patch (RFC 7396): members of the patch replace the target's, <c>null</c> removes one,
/// objects merge recursively, anything else (arrays included) replaces whole.
/// </summary>
public static class MergePatch
{
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
            return patch?.DeepClone();
        var result = target as JsonObject is { } targetObject ? (JsonObject)targetObject.DeepClone() : [];
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
                result.Remove(key);
            else
                result[key] = Apply(result[key], value);
        }
        return result;
    }
}
