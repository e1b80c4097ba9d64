using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class MaskingKeys : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "MaskingKeyProtected",
                table: "Targets",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MaskingKeySealed",
                table: "Targets",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "MaskingKeySealedFor",
                table: "Targets",
                type: "text",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "MaskingKeyProtected",
                table: "Targets");

            migrationBuilder.DropColumn(
                name: "MaskingKeySealed",
                table: "Targets");

            migrationBuilder.DropColumn(
                name: "MaskingKeySealedFor",
                table: "Targets");
        }
    }
}
