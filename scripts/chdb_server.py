#!/usr/bin/env python3
"""Run a real local ClickHouse server (HTTP + native TCP) from the PyPI wheel chdb-core.

chdb-core contains upstream clickhouse-local (DB::LocalServer). Run through the low-level
`chdb._chdb.query(..., path=DATA)`, the SQL `SYSTEM START LISTEN HTTP/TCP` opens the same
listeners as clickhouse-server. This launcher:

  1. writes config.xml / users.xml into DATA/.server/ and chdirs there (clickhouse-local reads
     ./config.xml);
  2. runs "SYSTEM START LISTEN ...; <ports INTO OUTFILE>; SELECT count() FROM file(stop.fifo)" in
     a thread: the last statement blocks until a line is written to the FIFO;
  3. waits until HTTP `SELECT 1` answers with this server's display name, prints
     `READY http=HOST:PORT tcp=HOST:PORT pid=N engine_start=S` and writes DATA/.server/server.pid;
  4. on SIGTERM/SIGINT (or when --parent-pid dies) writes to the FIFO, so the engine stops
     cleanly, prints STOPPED and exits 0.

Errors print `FAILED: ...` on stderr and exit 1. One server per process (an engine limit).
See docs/local-clickhouse.md for the background and the caveats.
"""
import argparse
import hashlib
import http.client
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr, flush=True)
    os._exit(1)


def parse_args():
    p = argparse.ArgumentParser(description="local ClickHouse server from chdb-core")
    p.add_argument("--data", required=True, help="persistent data directory")
    p.add_argument("--host", default="127.0.0.1", help="listen_host (exactly one address)")
    p.add_argument("--http-port", type=int, default=8123, help="HTTP port, 0 = any free port")
    p.add_argument("--tcp-port", type=int, default=9000, help="native TCP port, 0 = any free port")
    p.add_argument("--no-tcp", action="store_true", help="do not open the native TCP port")
    p.add_argument("--database", help="create this Atomic database at start")
    p.add_argument("--user", help="add a full-access user (needs --password); cuts down `default`")
    p.add_argument("--password", help="password of --user")
    p.add_argument("--readonly-user", help="NAME=DB.TABLE: a passwordless user that logs in only "
                   "from this host, readonly, with SELECT on that one table (a dictionary's user)")
    p.add_argument("--keep-alive-timeout", type=int, default=3, help="HTTP keep-alive seconds")
    p.add_argument("--config-extra", help="file with an XML fragment pasted inside <clickhouse>")
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting of the default profile (repeatable), e.g. http_receive_timeout=1")
    p.add_argument("--no-query-log", action="store_true", help="do not enable system.query_log")
    p.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    p.add_argument("--pid-file", help="default: DATA/.server/server.pid")
    p.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for READY")
    a = p.parse_args()
    for port in (a.http_port, a.tcp_port):
        if not 0 <= port <= 65535:
            fail(f"port {port} is out of range 0..65535")
    if a.database is not None and not IDENT.match(a.database):
        fail(f"--database {a.database!r}: use letters, digits and _ only")
    if a.readonly_user is not None:
        name, _, table = a.readonly_user.partition("=")
        db, _, tbl = table.partition(".")
        if not (IDENT.match(name) and IDENT.match(db) and IDENT.match(tbl)) or name == "default":
            fail(f"--readonly-user {a.readonly_user!r}: write NAME=DB.TABLE (letters, digits and _)")
        a.readonly_user = (name, db, tbl)
    if (a.user is None) != (a.password is None):
        fail("--user and --password go together")
    if a.user is not None:
        if not IDENT.match(a.user) or a.user == "default":
            fail(f"--user {a.user!r}: use letters, digits and _ only, and not 'default'")
        if a.password == "":
            fail("--password must not be empty")
    return a


def check_bind(host, port):
    """Catch a busy port before the engine starts (its own error is much less readable)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except OSError as e:
        fail(f"cannot bind {host}:{port}: {e}")
    finally:
        s.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def write_configs(a, srv, data, display_name):
    scripts = os.path.join(data, "user_scripts")
    q = escape
    tcp = "" if a.no_tcp else f"<tcp_port>{a.tcp_port}</tcp_port>"
    query_log = "" if a.no_query_log else (
        "<query_log><database>system</database><table>query_log</table>"
        "<flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>")
    extra = ""
    if a.config_extra:
        try:
            with open(a.config_extra, encoding="utf-8") as f:
                extra = f.read()
        except OSError as e:
            fail(f"--config-extra {a.config_extra}: {e}")
    config = f"""<clickhouse>
    <display_name>{q(display_name)}</display_name>
    <listen_host>{q(a.host)}</listen_host>
    <http_port>{a.http_port}</http_port>
    {tcp}
    <keep_alive_timeout>{a.keep_alive_timeout}</keep_alive_timeout>
    <users_config>{q(os.path.join(srv, 'users.xml'))}</users_config>
    <user_scripts_path>{q(scripts)}/</user_scripts_path>
    <user_defined_executable_functions_config>{q(scripts)}/*_function.xml</user_defined_executable_functions_config>
    <!-- Kept for parity with clickhouse-server, but clickhouse-local never reads it (LocalServer
         never calls Context::loadOrReloadDictionaries); scripts/dictionary_xml_to_ddl.py turns
         such files into CREATE DICTIONARY. Nor does it run LIFETIME dictionary updates. -->
    <dictionaries_config>{q(scripts)}/*_dictionary.xml</dictionaries_config>
    {query_log}
    {extra}
</clickhouse>
"""
    nets = "<networks><ip>::/0</ip></networks>"
    defaults = ""
    for kv in a.setting:
        name, sep, value = kv.partition("=")
        if not sep or not name.isidentifier():
            fail(f"--setting {kv!r}: expected NAME=VALUE")
        defaults += f"<{name}>{q(value)}</{name}>"
    reader = ""
    readonly_profile = ""
    if a.readonly_user is not None:
        name, db, tbl = a.readonly_user
        readonly_profile = "<readonly_profile><readonly>1</readonly></readonly_profile>"
        reader = (f"<{name}><password></password>"
                  "<networks><ip>::1</ip><ip>127.0.0.1</ip></networks>"
                  "<profile>readonly_profile</profile><quota>default</quota>"
                  f"<grants><query>GRANT SELECT ON `{db}`.`{tbl}`</query></grants></{name}>")
    if a.user is None:
        users = f"""<clickhouse>
    <profiles><default>{defaults}</default>{readonly_profile}</profiles>
    <quotas><default/></quotas>
    <users><default><password></password>{nets}<profile>default</profile><quota>default</quota>
        <access_management>1</access_management>
        <named_collection_control>1</named_collection_control><show_named_collections>1</show_named_collections>
        <show_named_collections_secrets>1</show_named_collections_secrets></default>{reader}</users>
</clickhouse>
"""
    else:
        # clickhouse-local itself logs in as passwordless `default`: keep it, but only with the
        # grants the launcher needs (see the doc, caveat 1).
        grants = ["SYSTEM LISTEN ON *.*", "CREATE TEMPORARY TABLE ON *.*", "READ ON FILE"]
        if a.database:
            grants.append(f"CREATE DATABASE ON {a.database}.*")
        g = "".join(f"<query>GRANT {x}</query>" for x in grants)
        sha = hashlib.sha256(a.password.encode()).hexdigest()
        dbs = f"<default_database>{a.database}</default_database>" if a.database else ""
        users = f"""<clickhouse>
    <profiles><default>{defaults}</default>{readonly_profile}</profiles>
    <quotas><default/></quotas>
    <users>{reader}
        <default><password></password>{nets}<profile>default</profile><quota>default</quota>
            <grants>{g}</grants></default>
        <{a.user}><password_sha256_hex>{sha}</password_sha256_hex>{nets}<profile>default</profile>
            <quota>default</quota>{dbs}<access_management>1</access_management>
            <named_collection_control>1</named_collection_control><show_named_collections>1</show_named_collections>
            <show_named_collections_secrets>1</show_named_collections_secrets></{a.user}>
    </users>
</clickhouse>
"""
    for name, text in (("config.xml", config), ("users.xml", users)):
        path = os.path.join(srv, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o600)
        os.replace(path + ".tmp", path)


def http_probe(host, port, display_name, query):
    """The answer to `query` when this server (not another one on the port) answers, else None."""
    try:
        c = http.client.HTTPConnection(host, port, timeout=2)
        c.request("GET", "/?query=" + urllib.parse.quote(query), headers={"Connection": "close"})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status == 200 and r.getheader("X-ClickHouse-Server-Display-Name") == display_name:
            return body.decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        pass
    return None


def main():
    a = parse_args()
    data = os.path.abspath(a.data)
    srv = os.path.join(data, ".server")
    try:
        os.makedirs(srv, exist_ok=True)
        os.makedirs(os.path.join(data, "user_scripts"), exist_ok=True)
    except OSError as e:
        fail(f"cannot create {srv}: {e}")
    pid_file = os.path.abspath(a.pid_file or os.path.join(srv, "server.pid"))
    try:
        with open(pid_file, encoding="utf-8") as f:
            old = int(f.read().strip() or "0")
        if old and old != os.getpid() and pid_alive(old):
            fail(f"data dir {data} is already served by pid {old}; stop it first (scripts/ch_stop.sh)")
    except (OSError, ValueError):
        pass
    check_bind(a.host, a.http_port)
    if not a.no_tcp:
        check_bind(a.host, a.tcp_port)

    display_name = "b24ch-local-" + secrets.token_hex(6)
    write_configs(a, srv, data, display_name)
    fifo = os.path.join(srv, "stop.fifo")
    ports_file = os.path.join(srv, "ports.tsv")
    for path in (fifo, ports_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os.mkfifo(fifo, 0o600)
    os.chdir(srv)  # clickhouse-local reads ./config.xml

    try:
        t0 = time.monotonic()
        from chdb import _chdb  # noqa: E402  (heavy import: after argument checks)
    except Exception as e:  # noqa: BLE001
        fail(f"cannot import chdb._chdb ({e}); run scripts/setup_clickhouse.sh")
    t_import = time.monotonic() - t0

    def lit(s):
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"

    stmts = ["SYSTEM START LISTEN HTTP"]
    if not a.no_tcp:
        stmts.append("SYSTEM START LISTEN TCP")
    if a.database:
        stmts.append(f"CREATE DATABASE IF NOT EXISTS `{a.database}`")  # Atomic by default
    tcp_expr = "0" if a.no_tcp else "getServerPort('tcp_port')"
    stmts.append(f"SELECT getServerPort('http_port'), {tcp_expr} INTO OUTFILE {lit(ports_file)} FORMAT TSV")
    stmts.append(f"SELECT count() FROM file({lit(fifo)}, 'LineAsString')")
    sql = ";\n".join(stmts)

    state = {"error": None}
    stopping = threading.Event()
    finished = threading.Event()

    def engine():
        try:
            r = _chdb.query(sql, "TabSeparated", path=data)
            if r is not None and r.has_error():
                state["error"] = r.error_message().strip()
        except Exception as e:  # noqa: BLE001
            state["error"] = str(e).strip()
        finally:
            finished.set()

    t1 = time.monotonic()
    threading.Thread(target=engine, name="clickhouse-local", daemon=True).start()

    def on_signal(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # Wait for the ports file, then for this server's HTTP answer.
    deadline = time.monotonic() + a.ready_timeout
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(a.host, a.host)
    http_port = tcp_port = None
    tcp_query = "SELECT 0" if a.no_tcp else "SELECT getServerPort('tcp_port')"
    while True:
        if finished.is_set():
            fail(f"engine stopped during start: {state['error'] or 'see the engine error above'}")
        if stopping.is_set():
            fail("interrupted during start")
        if time.monotonic() > deadline:
            fail(f"server did not answer within {a.ready_timeout:.0f}s")
        if http_port is None:
            try:
                with open(ports_file, encoding="utf-8") as f:
                    parts = re.findall(r"\d+", f.read())
                if len(parts) == 2:  # the file may be half written: the probe checks the port
                    http_port = int(parts[0])
            except (OSError, ValueError):
                pass
        if http_port is not None:
            answer = http_probe(probe_host, http_port, display_name, tcp_query)
            if answer is not None and answer.isdigit():
                tcp_port = int(answer)
                break
            http_port = None
        time.sleep(0.02)
    engine_start = time.monotonic() - t1

    with open(pid_file, "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    host = f"[{a.host}]" if ":" in a.host else a.host
    tcp = "off" if a.no_tcp else f"{host}:{tcp_port}"
    print(f"READY http={host}:{http_port} tcp={tcp} pid={os.getpid()} "
          f"engine_start={engine_start:.2f}s import={t_import:.2f}s", flush=True)

    # Serve until a signal, the parent's death or an engine stop.
    while not stopping.wait(0.25):
        if finished.is_set():
            break
        if a.parent_pid and (os.getppid() != a.parent_pid or not pid_alive(a.parent_pid)):
            print(f"parent {a.parent_pid} is gone; stopping", file=sys.stderr, flush=True)
            break

    code = 0
    if not finished.is_set():
        # Writing one line ends the blocking file() read; clickhouse-local then shuts down.
        for _ in range(100):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet; the read query has not opened it
                time.sleep(0.05)
                continue
            try:
                os.write(fd, b"stop\n")
            finally:
                os.close(fd)
            break
        if not finished.wait(20):
            print("FAILED: engine did not stop within 20s", file=sys.stderr, flush=True)
            code = 1
    elif not stopping.is_set():
        print(f"FAILED: engine stopped by itself: {state['error'] or 'see the engine error above'}",
              file=sys.stderr, flush=True)
        code = 1
    try:
        os.unlink(pid_file)
    except OSError:
        pass
    if code == 0:
        print("STOPPED", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown of the engine's statics


if __name__ == "__main__":
    main()
