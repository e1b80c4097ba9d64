# Airlock control plane. Build from the repository root:
#   docker build -f docker/controlplane.Dockerfile -t airlock/controlplane .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish ControlPlane/ControlPlane.csproj -c Release -o /app --nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# State (SQLite store when no connection string is given) lives in a volume owned by the app user.
RUN mkdir -p /var/lib/airlock && chown "$APP_UID" /var/lib/airlock
VOLUME /var/lib/airlock
ENV Airlock__StateDirectory=/var/lib/airlock \
    Kestrel__Endpoints__Http__Url=http://0.0.0.0:8080 \
    Kestrel__Endpoints__Grpc__Url=http://0.0.0.0:8081
EXPOSE 8080 8081
USER $APP_UID
ENTRYPOINT ["dotnet", "ControlPlane.dll"]
