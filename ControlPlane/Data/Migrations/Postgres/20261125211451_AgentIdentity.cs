using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class AgentIdentity : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                // Keys that existed before this migration are snapshot keys (ECDSA P-256).
                name: "Algorithm",
                table: "SigningKeys",
                type: "text",
                nullable: false,
                defaultValue: "ES256");

            migrationBuilder.AddColumn<string>(
                name: "Purpose",
                table: "SigningKeys",
                type: "text",
                nullable: false,
                defaultValue: "snapshot");

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "LastTokenIssuedAt",
                table: "Agents",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "TrustedIssuers",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    Issuer = table.Column<string>(type: "text", nullable: false),
                    Audiences = table.Column<string>(type: "text", nullable: false),
                    StaticJwks = table.Column<string>(type: "text", nullable: true),
                    Bindings = table.Column<string>(type: "text", nullable: false),
                    FetchedJwks = table.Column<string>(type: "text", nullable: true),
                    FetchedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    LastAttemptAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    LastError = table.Column<string>(type: "text", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_TrustedIssuers", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_SigningKeys_Purpose",
                table: "SigningKeys",
                column: "Purpose");

            migrationBuilder.CreateIndex(
                name: "IX_TrustedIssuers_Name",
                table: "TrustedIssuers",
                column: "Name",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "TrustedIssuers");

            migrationBuilder.DropIndex(
                name: "IX_SigningKeys_Purpose",
                table: "SigningKeys");

            migrationBuilder.DropColumn(
                name: "Algorithm",
                table: "SigningKeys");

            migrationBuilder.DropColumn(
                name: "Purpose",
                table: "SigningKeys");

            migrationBuilder.DropColumn(
                name: "LastTokenIssuedAt",
                table: "Agents");
        }
    }
}
