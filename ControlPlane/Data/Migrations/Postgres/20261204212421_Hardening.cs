using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class Hardening : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "SecurityStamp",
                table: "Users",
                type: "text",
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "UpstreamAuth",
                table: "Targets",
                type: "text",
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "AttributionProblem",
                table: "Sessions",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "SidecarName",
                table: "Sessions",
                type: "text",
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<byte[]>(
                name: "SigningPublicKey",
                table: "Sessions",
                type: "bytea",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "SecurityStamp",
                table: "Users");

            migrationBuilder.DropColumn(
                name: "UpstreamAuth",
                table: "Targets");

            migrationBuilder.DropColumn(
                name: "AttributionProblem",
                table: "Sessions");

            migrationBuilder.DropColumn(
                name: "SidecarName",
                table: "Sessions");

            migrationBuilder.DropColumn(
                name: "SigningPublicKey",
                table: "Sessions");
        }
    }
}
