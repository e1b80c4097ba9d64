# Airlock sidecar. Build from the repository root:
#   docker build -f docker/sidecar.Dockerfile -t airlock/sidecar .
# First start: --control-plane URL --enrollment-token TOKEN; later starts reuse /var/lib/airlock-sidecar.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish Sidecar/Host/Sidecar.csproj -c Release -o /app --nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
RUN mkdir -p /var/lib/airlock-sidecar && chown "$APP_UID" /var/lib/airlock-sidecar && chmod 700 /var/lib/airlock-sidecar
VOLUME /var/lib/airlock-sidecar
ENV Sidecar__StateDirectory=/var/lib/airlock-sidecar \
    Kestrel__Endpoints__Http__Url=http://0.0.0.0:9090
EXPOSE 9090
USER $APP_UID
ENTRYPOINT ["dotnet", "Sidecar.dll"]
