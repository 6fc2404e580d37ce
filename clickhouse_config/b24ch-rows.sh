#!/bin/sh
# b24ch wrapper for ClickHouse's user_scripts directory (user_scripts_path, by default
# /var/lib/clickhouse/user_scripts/): typed rows of an entity for the executable() table function. Install it there as `b24ch-rows`, executable by the
# clickhouse user:
#
#   install -m 0755 clickhouse_config/b24ch-rows.sh /var/lib/clickhouse/user_scripts/b24ch-rows
#
# One wrapper per use, with the subcommand fixed here: whoever may write SQL may choose the
# arguments (ENTITY [--format F] [--modified-since T] [--lookback SECONDS] [--with-watermark]) and nothing else — not another subcommand, not `--config`, not
# `--allow-write`. Every argument is checked below; anything else exits with code 2.
#
# ClickHouse starts executables with its own working directory and environment, so the
# binary and the config are named here with absolute paths. Edit both lines.
# The config's state_dir must be absolute and writable by the clickhouse user: every b24ch
# process (these and `serve`) shares the portal's rate and operating budget through it.
B24CH_BIN="/usr/local/bin/b24ch"
B24CH_CONFIG_FILE="/etc/b24ch/b24ch.toml"
# ClickHouse logs the last line a command writes to stderr; keep it to warnings and errors.
export RUST_LOG="${RUST_LOG:-warn}"

refuse() {
    echo "b24ch-rows: $1 (allowed: ENTITY [--format F] [--modified-since T] [--lookback SECONDS] [--with-watermark])" >&2
    exit 2
}
# Values: names, numbers, dates (no spaces: ClickHouse splits the command on them).
value_ok() {
    case "$1" in
        ''|-*|*[!A-Za-z0-9_.,:+-]*) return 1 ;;
    esac
    return 0
}

positional=1
expect_value=""
for arg in "$@"; do
    if [ -n "$expect_value" ]; then
        value_ok "$arg" || refuse "bad value for $expect_value"
        expect_value=""
        continue
    fi
    case "$arg" in
        --format|--modified-since|--lookback) expect_value="$arg" ;;
        --with-watermark) ;;
        -*) refuse "option not allowed: $arg" ;;
        *)
            [ "$positional" -gt 0 ] || refuse "unexpected argument"
            value_ok "$arg" || refuse "bad name"
            positional=$((positional - 1))
            ;;
    esac
done
[ -z "$expect_value" ] || refuse "$expect_value needs a value"
exec "$B24CH_BIN" --config "$B24CH_CONFIG_FILE" exec rows "$@"
