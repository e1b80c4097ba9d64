using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class AuditIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_AuditLog_Actor_Id",
                table: "AuditLog",
                columns: new[] { "Actor", "Id" });

            migrationBuilder.CreateIndex(
                name: "IX_AuditLog_EntityType_EntityName_Id",
                table: "AuditLog",
                columns: new[] { "EntityType", "EntityName", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_AuditLog_Actor_Id",
                table: "AuditLog");

            migrationBuilder.DropIndex(
                name: "IX_AuditLog_EntityType_EntityName_Id",
                table: "AuditLog");
        }
    }
}
