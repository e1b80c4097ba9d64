using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class AgentLastUse : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "LastUsedAt",
                table: "Agents",
                type: "INTEGER",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "LastUsedAt",
                table: "Agents");
        }
    }
}
