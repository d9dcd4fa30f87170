//! SQL function names by what an attacker gets from calling them.

pub(super) fn function_level(f: &str) -> u8 {
    if strong_function(f) {
        2
    } else if dangerous_function(f) {
        1
    } else {
        0
    }
}

/// Functions whose call in a request value is an attack on its own.
pub(super) fn strong_function(f: &str) -> bool {
    matches!(
        f,
        "sleep"
            | "benchmark"
            | "pg_sleep"
            | "load_file"
            | "extractvalue"
            | "updatexml"
            | "group_concat"
            | "xp_cmdshell"
            | "sys_eval"
            | "sys_exec"
            | "name_const"
            | "dbms_pipe"
            | "receive_message"
            | "utl_inaddr"
            | "get_host_address"
            | "pg_read_file"
            | "lo_import"
            | "openrowset"
            | "opendatasource"
            | "fn_varbintohexstr"
            | "is_srvrolemember"
            | "randomblob"
            | "sqlite_version"
            | "make_set"
            | "lo_get"
            | "lo_export"
            | "lo_from_bytes"
            | "pg_ls_dir"
            | "pg_read_binary_file"
            | "dblink"
            | "dblink_exec"
    )
}

/// Functions that only an attacker calls from a request value: time delays, file access,
/// error-based extraction, out-of-band and command execution, metadata.
pub(super) fn dangerous_function(f: &str) -> bool {
    matches!(
        f,
        "sleep"
            | "benchmark"
            | "pg_sleep"
            | "load_file"
            | "extractvalue"
            | "updatexml"
            | "group_concat"
            | "concat_ws"
            | "xp_cmdshell"
            | "sys_eval"
            | "sys_exec"
            | "make_set"
            | "elt"
            | "exp"
            | "floor"
            | "rand"
            | "version"
            | "database"
            | "user"
            | "current_user"
            | "system_user"
            | "session_user"
            | "schema"
            | "json_extract"
            | "json_depth"
            | "json_keys"
            | "row_count"
            | "name_const"
            | "polygon"
            | "multipoint"
            | "geometrycollection"
            | "linestring"
            | "randomblob"
            | "dbms_pipe"
            | "receive_message"
            | "utl_inaddr"
            | "get_host_address"
            | "utl_http"
            | "ctxsys"
            | "xmltype"
            | "sqlite_version"
            | "pg_read_file"
            | "lo_import"
            | "openrowset"
            | "opendatasource"
            | "fn_varbintohexstr"
            | "is_srvrolemember"
            | "db_name"
            | "has_dbaccess"
            | "iif"
            | "if"
            | "ifnull"
            | "nullif"
            | "coalesce"
            | "hex"
            | "unhex"
            | "ord"
            | "mid"
            | "substr"
            | "substring"
            | "char_length"
            | "chr"
            | "char"
            | "ascii"
    )
}

/// Other common SQL functions (not dangerous alone).
pub(super) fn known_function(f: &str) -> bool {
    matches!(
        f,
        "concat"
            | "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "length"
            | "len"
            | "lower"
            | "upper"
            | "trim"
            | "replace"
            | "cast"
            | "convert"
            | "now"
            | "abs"
            | "round"
            | "md5"
            | "sha1"
            | "left"
            | "right"
            | "reverse"
            | "instr"
            | "locate"
            | "position"
            | "lpad"
            | "rpad"
            | "strcmp"
            | "field"
            | "find_in_set"
            | "exists"
            | "values"
            | "char"
            | "varchar"
    )
}
