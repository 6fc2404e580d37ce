#!/bin/sh
# b24ch wrapper for ClickHouse's user_scripts directory (user_scripts_path, by default
# /var/lib/clickhouse/user_scripts/). Install it there as `b24ch`, executable by the
# clickhouse user:
#
#   install -m 0755 clickhouse_config/b24ch.sh /var/lib/clickhouse/user_scripts/b24ch
#
# ClickHouse starts executables with its own working directory and environment, so the
# binary and the config are named here with absolute paths. Edit both lines.
# The config's state_dir must be absolute and writable by the clickhouse user: every b24ch
# process (these and `serve`) shares the portal's rate and operating budget through it.
B24CH_BIN="/usr/local/bin/b24ch"
B24CH_CONFIG_FILE="/etc/b24ch/b24ch.toml"
# ClickHouse logs the last line a command writes to stderr; keep it to warnings and errors.
export RUST_LOG="${RUST_LOG:-warn}"
exec "$B24CH_BIN" --config "$B24CH_CONFIG_FILE" "$@"
