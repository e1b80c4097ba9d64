using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Airlock.ControlPlane.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class RefusalsAndConnectionTests : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "RefusedConnections",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    SidecarId = table.Column<Guid>(type: "TEXT", nullable: false),
                    SidecarName = table.Column<string>(type: "TEXT", maxLength: 63, nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false),
                    Target = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    Agent = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    Client = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    SqlState = table.Column<string>(type: "TEXT", maxLength: 5, nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 500, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_RefusedConnections", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "TargetConnectionTests",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Target = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    SidecarId = table.Column<Guid>(type: "TEXT", nullable: false),
                    RequestedBy = table.Column<string>(type: "TEXT", nullable: false),
                    RequestedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    CompletedAt = table.Column<long>(type: "INTEGER", nullable: true),
                    Succeeded = table.Column<bool>(type: "INTEGER", nullable: true),
                    Detail = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    Milliseconds = table.Column<double>(type: "REAL", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_TargetConnectionTests", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_RefusedConnections_At",
                table: "RefusedConnections",
                column: "At");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "RefusedConnections");

            migrationBuilder.DropTable(
                name: "TargetConnectionTests");
        }
    }
}
