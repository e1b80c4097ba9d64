using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Airlock.ControlPlane.Observability;

public static class ObservabilityExtensions
{
    public const string MeterName = "Airlock.ControlPlane";

    /// <summary>
    /// Structured console logs, OpenTelemetry traces and metrics. Metrics are scraped at
    /// <c>/metrics</c> (Prometheus); traces go to an OTLP collector when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the SDK reads it), else stay in-process.
    /// </summary>
    public static IHostApplicationBuilder AddAirlockObservability(this IHostApplicationBuilder builder, string serviceName)
    {
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName, serviceVersion: typeof(ObservabilityExtensions).Assembly.GetName().Version?.ToString()))
            .WithTracing(t => t
                .AddAspNetCoreInstrumentation(o => o.Filter = ctx => !ctx.Request.Path.StartsWithSegments("/metrics"))
                .AddHttpClientInstrumentation()
                .AddSource(MeterName))
            .WithMetrics(m => m
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddMeter("System.Runtime")
                .AddMeter(MeterName)
                .AddPrometheusExporter());
        builder.Services.AddHealthChecks();
        return builder;
    }

    public static WebApplication MapAirlockObservability(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthChecks("/healthz");
        return app;
    }
}
