using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class AgentLastUse : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "LastUsedAt",
                table: "Agents",
                type: "timestamp with time zone",
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
