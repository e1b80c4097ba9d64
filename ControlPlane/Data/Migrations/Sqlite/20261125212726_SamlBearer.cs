using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class SamlBearer : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Certificate",
                table: "TrustedIssuers",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                // Issuers that existed before SAML support are OIDC issuers.
                name: "Kind",
                table: "TrustedIssuers",
                type: "TEXT",
                nullable: false,
                defaultValue: "oidc");

            migrationBuilder.CreateTable(
                name: "UsedAssertions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    ExpiresAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UsedAssertions", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_UsedAssertions_ExpiresAt",
                table: "UsedAssertions",
                column: "ExpiresAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "UsedAssertions");

            migrationBuilder.DropColumn(
                name: "Certificate",
                table: "TrustedIssuers");

            migrationBuilder.DropColumn(
                name: "Kind",
                table: "TrustedIssuers");
        }
    }
}
