using System.Text.Json;
using System.Text.Json.Serialization;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Airlock.ControlPlane.Policies;

/// <summary>Reads and writes policy documents as YAML or JSON (same field names, camelCase).</summary>
public static class PolicyFormat
{
    public const string YamlMediaType = "application/yaml";
    public const string JsonMediaType = "application/json";

    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        // A misspelt field must be an error, not silently ignored policy.
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    private static readonly IDeserializer _yamlReader = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    private static readonly ISerializer _yamlWriter = new SerializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull)
        .Build();

    public static bool IsYaml(string? contentType) =>
        contentType is not null
        && (contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase) || contentType.Contains("yml", StringComparison.OrdinalIgnoreCase));

    /// <summary>Parses a document; a syntax error comes back as a <see cref="PolicyError"/> with its position.</summary>
    public static (T? Value, PolicyError? Error) Parse<T>(string text, bool yaml) where T : class
    {
        try
        {
            var value = yaml ? _yamlReader.Deserialize<T>(text) : JsonSerializer.Deserialize<T>(text, Json);
            return value is null ? (null, new PolicyError("$", "the document is empty")) : (value, null);
        }
        catch (YamlException e)
        {
            return (null, new PolicyError($"line {e.Start.Line}, column {e.Start.Column}", (e.InnerException ?? e).Message));
        }
        catch (JsonException e)
        {
            return (null, new PolicyError(e.Path ?? "$", $"{e.Message.Split(" Path:")[0]}"));
        }
    }

    public static string Write(object document, bool yaml) =>
        yaml ? _yamlWriter.Serialize(document) : JsonSerializer.Serialize(document, Json);
}
