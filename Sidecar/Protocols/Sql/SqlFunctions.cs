namespace Airlock.Sidecar.Protocols.Sql;

/// <summary>What the classifier knows about a function by its name.</summary>
public readonly record struct FunctionRisk(StatementClass Class, StatementFlags Flags);

/// <summary>
/// Functions known by name (lower case, <c>pg_catalog.</c> folded away; a function of the same name in
/// another schema is judged the same, which can only be stricter):
/// <list type="bullet">
/// <item><see cref="Dangerous"/>: server files and programs, large objects from server files, backend
/// signalling, network access, settings, advisory locks, replication/WAL/backup, functions that run SQL
/// given as text, notifications, sequence and large-object writes;</item>
/// <item><see cref="Safe"/>: the documented safe list — functions that read and compute only (volatile
/// ones such as <c>random</c> and <c>clock_timestamp</c> included);</item>
/// <item>anything else is unknown: judged by the target's catalog (a volatile function makes the
/// statement at least a write) or, without a catalog, the statement is at least a write.</item>
/// </list>
/// </summary>
public static class SqlFunctions
{
    private static readonly FunctionRisk File = new(StatementClass.Admin, StatementFlags.FileAccess);
    private static readonly FunctionRisk Signal = new(StatementClass.Admin, StatementFlags.BackendSignal);
    private static readonly FunctionRisk Network = new(StatementClass.Admin, StatementFlags.NetworkAccess);
    private static readonly FunctionRisk Settings = new(StatementClass.Admin, StatementFlags.SettingChange);
    private static readonly FunctionRisk Advisory = new(StatementClass.Admin, StatementFlags.AdvisoryLock);
    private static readonly FunctionRisk Wal = new(StatementClass.Admin, StatementFlags.ReplicationOrWal);
    private static readonly FunctionRisk SqlText = new(StatementClass.Unknown, StatementFlags.DynamicSql);
    private static readonly FunctionRisk LoFile = new(StatementClass.Admin, StatementFlags.LargeObjectFile);
    private static readonly FunctionRisk LoWrite = new(StatementClass.Write, StatementFlags.LargeObjectWrite);
    private static readonly FunctionRisk Write = new(StatementClass.Write, StatementFlags.None);

    public static IReadOnlyDictionary<string, FunctionRisk> Dangerous { get; } = Build();

    private static Dictionary<string, FunctionRisk> Build()
    {
        var d = new Dictionary<string, FunctionRisk>(StringComparer.Ordinal);
        void Add(FunctionRisk risk, params string[] names)
        {
            foreach (var n in names)
                d[n] = risk;
        }
        Add(File, "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir",
            "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_current_logfile",
            "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_file_read", "pg_file_length", "pg_logdir_ls",
            "pg_import_system_collations");
        Add(LoFile, "lo_import", "lo_export");
        Add(Signal, "pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend", "pg_reload_conf", "pg_rotate_logfile",
            "pg_promote", "pg_log_backend_memory_contexts", "pg_wal_replay_pause", "pg_wal_replay_resume");
        Add(Network, "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_disconnect", "dblink_open", "dblink_fetch",
            "dblink_close", "dblink_send_query", "dblink_get_result", "dblink_is_busy", "dblink_cancel_query", "dblink_get_connections",
            "dblink_error_message", "dblink_get_notify", "dblink_build_sql_insert", "dblink_build_sql_update", "dblink_build_sql_delete",
            "postgres_fdw_disconnect", "postgres_fdw_disconnect_all");
        Add(Settings, "set_config");
        Add(Advisory, "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
            "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
            "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all");
        Add(Wal, "pg_create_restore_point", "pg_switch_wal", "pg_switch_xlog", "pg_start_backup", "pg_stop_backup", "pg_backup_start",
            "pg_backup_stop", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_drop_replication_slot",
            "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot", "pg_replication_slot_advance",
            "pg_logical_slot_get_changes", "pg_logical_slot_peek_changes", "pg_logical_slot_get_binary_changes",
            "pg_logical_slot_peek_binary_changes", "pg_logical_emit_message", "pg_replication_origin_create", "pg_replication_origin_drop",
            "pg_replication_origin_advance", "pg_replication_origin_session_setup", "pg_replication_origin_session_reset",
            "pg_replication_origin_xact_setup", "pg_replication_origin_xact_reset", "pg_stat_reset", "pg_stat_reset_shared",
            "pg_stat_reset_single_table_counters", "pg_stat_reset_single_function_counters", "pg_stat_reset_slru",
            "pg_stat_reset_replication_slot", "pg_stat_reset_subscription_stats", "pg_stat_statements_reset", "pg_checkpoint",
            "txid_current", "pg_current_xact_id", "pg_export_snapshot", "pg_import_snapshot");
        Add(SqlText, "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
            "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema",
            "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
            "ts_stat", "ts_rewrite", "xpath_table", "crosstab", "crosstab2", "crosstab3", "crosstab4", "connectby");
        Add(new FunctionRisk(StatementClass.Write, StatementFlags.Notify), "pg_notify");
        Add(LoWrite, "lo_create", "lo_creat", "lo_unlink", "lowrite", "lo_put", "lo_from_bytea", "lo_truncate", "lo_truncate64");
        Add(Write, "nextval", "setval");
        return d;
    }

    /// <summary>
    /// The documented safe list: pure computation and reads (aggregates, window functions, string, number,
    /// date, JSON, array and network-address functions, type constructors), plus a few volatile functions
    /// that change nothing (<c>random</c>, <c>clock_timestamp</c>, <c>gen_random_uuid</c>, <c>pg_sleep</c>).
    /// </summary>
    public static IReadOnlySet<string> Safe { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        // aggregates
        "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "bit_and", "bit_or", "bit_xor", "string_agg", "array_agg",
        "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg", "stddev", "stddev_pop", "stddev_samp", "variance",
        "var_pop", "var_samp", "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_count", "regr_r2", "regr_avgx",
        "regr_avgy", "regr_sxx", "regr_sxy", "regr_syy", "mode", "percentile_cont", "percentile_disc", "range_agg", "range_intersect_agg",
        "any_value",
        // window
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
        // conditional and comparison (also the keyword forms)
        "coalesce", "nullif", "greatest", "least", "num_nulls", "num_nonnulls",
        // strings
        "lower", "upper", "initcap", "length", "char_length", "character_length", "octet_length", "bit_length", "substr", "substring",
        "position", "strpos", "overlay", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "replace", "translate", "reverse", "repeat",
        "left", "right", "split_part", "concat", "concat_ws", "format", "quote_ident", "quote_literal", "quote_nullable", "md5", "sha224",
        "sha256", "sha384", "sha512", "encode", "decode", "ascii", "chr", "to_hex", "regexp_replace", "regexp_match", "regexp_matches",
        "regexp_split_to_array", "regexp_split_to_table", "regexp_like", "regexp_count", "regexp_instr", "regexp_substr", "starts_with",
        "string_to_array", "string_to_table", "array_to_string", "normalize", "unistr", "convert", "convert_from", "convert_to",
        "to_ascii", "get_byte", "set_byte", "get_bit", "set_bit", "bit_count", "crc32", "crc32c",
        // numbers
        "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "exp", "ln", "log", "log10", "power", "pow", "mod",
        "div", "pi", "degrees", "radians", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "width_bucket",
        "scale", "min_scale", "trim_scale", "gcd", "lcm", "factorial", "random", "random_normal", "to_number", "to_char",
        // dates and times
        "now", "current_timestamp", "current_date", "current_time", "localtime", "localtimestamp", "clock_timestamp",
        "statement_timestamp", "transaction_timestamp", "timeofday", "date_trunc", "date_part", "date_bin", "extract", "age",
        "make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval", "to_date", "to_timestamp", "justify_days",
        "justify_hours", "justify_interval", "isfinite", "date_add", "date_subtract", "timezone", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        "generate_series", "generate_subscripts",
        // json
        "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object", "jsonb_build_object", "json_build_array",
        "jsonb_build_array", "json_object", "jsonb_object", "json_array_length", "jsonb_array_length", "json_each", "jsonb_each",
        "json_each_text", "jsonb_each_text", "json_extract_path", "jsonb_extract_path", "json_extract_path_text",
        "jsonb_extract_path_text", "json_object_keys", "jsonb_object_keys", "json_populate_record", "jsonb_populate_record",
        "json_populate_recordset", "jsonb_populate_recordset", "json_to_record", "jsonb_to_record", "json_to_recordset",
        "jsonb_to_recordset", "json_array_elements", "jsonb_array_elements", "json_array_elements_text", "jsonb_array_elements_text",
        "json_typeof", "jsonb_typeof", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_set", "jsonb_set_lax", "jsonb_insert",
        "jsonb_pretty", "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
        "json_scalar", "json_serialize", "json", "json_exists", "json_query", "json_value", "json_table",
        // arrays and ranges
        "array_append", "array_prepend", "array_cat", "array_dims", "array_fill", "array_length", "array_lower", "array_upper",
        "array_ndims", "array_position", "array_positions", "array_remove", "array_replace", "cardinality", "unnest", "trim_array",
        "array_sample", "array_shuffle", "lower_inc", "upper_inc", "lower_inf", "upper_inf", "isempty", "range_merge", "multirange",
        "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
        // types written like calls
        "cast", "numeric", "decimal", "varchar", "char", "character", "bpchar", "bit", "varbit", "float", "float4", "float8", "int",
        "int2", "int4", "int8", "integer", "smallint", "bigint", "real", "text", "bool", "boolean", "date", "time", "timetz",
        "timestamp", "timestamptz", "interval", "uuid", "bytea", "jsonb", "xml", "inet", "cidr", "macaddr", "money", "row", "array",
        // network, uuid, misc
        "host", "hostmask", "masklen", "netmask", "network", "broadcast", "family", "abbrev", "set_masklen", "inet_same_family",
        "inet_merge", "gen_random_uuid", "uuid_generate_v4", "version", "current_database", "current_schema", "current_schemas",
        "current_user", "session_user", "current_role", "current_setting", "pg_backend_pid", "pg_typeof", "format_type",
        "pg_get_viewdef", "pg_get_functiondef", "pg_get_indexdef", "pg_get_constraintdef", "pg_get_expr", "pg_get_userbyid",
        "pg_table_is_visible", "pg_function_is_visible", "pg_type_is_visible", "pg_size_pretty", "pg_size_bytes",
        "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size", "pg_column_size",
        "pg_encoding_to_char", "pg_char_to_encoding", "obj_description", "col_description", "shobj_description",
        "has_table_privilege", "has_column_privilege", "has_schema_privilege", "has_database_privilege", "has_function_privilege",
        "pg_has_role", "pg_postmaster_start_time", "pg_conf_load_time", "inet_client_addr", "inet_client_port", "inet_server_addr",
        "inet_server_port", "pg_is_in_recovery", "pg_get_keywords", "pg_input_is_valid", "pg_input_error_info",
        "xmlelement", "xmlforest", "xmlconcat", "xmlparse", "xmlserialize", "xmlroot", "xmlpi", "xmlcomment", "xpath", "xpath_exists",
        "xmlexists", "xml_is_well_formed", "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
        "ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip", "numnode", "querytree", "tsvector_to_array", "array_to_tsvector",
        "grouping", "lo_get", "loread", "lo_open", "lo_close", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64", "currval", "lastval",
        "setseed", "pg_client_encoding", "pg_jit_available", "pg_column_compression", "pg_blocking_pids", "pg_current_wal_lsn", "pg_wal_lsn_diff", "pg_last_xact_replay_timestamp", "pg_get_function_arguments",
        "pg_get_function_result", "pg_get_function_identity_arguments", "pg_get_triggerdef", "pg_get_serial_sequence", "to_regrole",
        "mxid_age", "age", "has_sequence_privilege", "has_any_column_privilege", "has_tablespace_privilege", "pg_tablespace_size",
        "pg_relation_filenode", "pg_get_ruledef", "pg_get_statisticsobjdef", "pg_get_partkeydef", "pg_is_wal_replay_paused",
        "pg_is_other_temp_schema", "pg_my_temp_schema", "pg_current_snapshot", "pg_snapshot_xmin", "pg_snapshot_xmax",
        "txid_current_snapshot", "txid_snapshot_xmin", "txid_snapshot_xmax", "to_regclass", "to_regproc", "to_regtype", "to_regnamespace",
    };

    /// <summary>Folds a called name: lower case (quoted names too: stricter), without a <c>pg_catalog.</c> prefix.</summary>
    public static string Fold(string name)
    {
        var lower = name.ToLowerInvariant();
        return lower.StartsWith("pg_catalog.", StringComparison.Ordinal) ? lower["pg_catalog.".Length..] : lower;
    }

    /// <summary>The risk of a folded name; null when it is neither dangerous nor on the safe list (unknown).</summary>
    public static FunctionRisk? Known(string folded)
    {
        var bare = folded.Contains('.') ? folded[(folded.LastIndexOf('.') + 1)..] : folded;
        if (Dangerous.TryGetValue(bare, out var risk))
            return risk; // any schema: a look-alike in another schema is judged as the real one
        if (!folded.Contains('.') && Safe.Contains(folded))
            return new FunctionRisk(StatementClass.Read, StatementFlags.None);
        return null;
    }
}
