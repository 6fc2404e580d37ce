//! A real local ClickHouse 26.9 server (HTTP + native TCP) from the PyPI wheel `chdb-core`.
//!
//! The server is `scripts/chdb_server.py` (upstream clickhouse-local with its HTTP/TCP listeners
//! started by `SYSTEM START LISTEN`), run by the Python of `.build/chvenv` that
//! `scripts/setup_clickhouse.sh` installs. Background and caveats: `docs/local-clickhouse.md`.
//!
//! The child is a plain [`std::process::Child`] watched by two std threads, not a
//! `tokio::process::Child`: a tokio child belongs to the runtime that spawned it, while the test
//! support shares one server between `#[tokio::test]`s that each have their own runtime. The async
//! methods run the blocking parts on `spawn_blocking`. The launcher also gets `--parent-pid`, so a
//! server never outlives the process that started it, even when `Drop` never runs.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long [`LocalClickHouse::start`] waits for the launcher's `READY` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`LocalClickHouse::stop`] waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of the launcher's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 40;
const SETUP_HINT: &str =
    "run scripts/setup_clickhouse.sh (or set B24CH_CHDB_PYTHON to a Python with chdb-core 26.9)";

/// What server to start; [`LocalClickHouseOptions::new`] gives the defaults.
#[derive(Debug, Clone, Default)]
pub struct LocalClickHouseOptions {
    /// Persistent data directory (created if missing). The generated config lives in
    /// `DATA/.server/`, executable UDF scripts and `*_function.xml` in `DATA/user_scripts/`.
    pub data_dir: PathBuf,
    /// HTTP port on 127.0.0.1; 0 picks a free one. The native TCP port is always a free one.
    pub http_port: u16,
    /// Created (Atomic) at start; [`LocalClickHouse::query`] and [`LocalClickHouse::client`] use it.
    pub database: Option<String>,
    /// `(user, password)`: a full-access user; the passwordless `default` is then cut down.
    pub user: Option<(String, String)>,
    /// `(user, "db.table")`: a passwordless user that logs in only from this host, readonly,
    /// with `SELECT` on that one table — what b24ch's label dictionary reads as
    /// (`clickhouse.dictionary_user`); clickhouse-local has no writable access storage, so
    /// such a user cannot be made with `CREATE USER` here.
    pub readonly_user: Option<(String, String)>,
    /// Python with chdb-core. Default: env `B24CH_CHDB_PYTHON`, else `<project>/.build/chvenv/bin/python`.
    pub python: Option<PathBuf>,
    /// Launcher script. Default: `<project>/scripts/chdb_server.py`.
    pub launcher: Option<PathBuf>,
    /// CA certificate (PEM) the server trusts, instead of the system CAs, for its outgoing
    /// HTTPS (`url()`, HTTP dictionaries): `openSSL.client.caConfig` with strict verification.
    pub client_ca: Option<PathBuf>,
    /// `(name, value)` settings of the default profile, e.g. a short `http_receive_timeout`.
    pub settings: Vec<(String, String)>,
}

impl LocalClickHouseOptions {
    /// Defaults: a free HTTP port, no database, passwordless `default` user.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalClickHouseError {
    #[error("Python for the local ClickHouse not found at {path}: {SETUP_HINT}")]
    PythonMissing { path: PathBuf },
    #[error(
        "local ClickHouse launcher not found at {path}: set B24CH_HOME to the b24ch project directory"
    )]
    LauncherMissing { path: PathBuf },
    #[error("invalid local ClickHouse option: {0}")]
    InvalidOption(String),
    #[error("cannot create the local ClickHouse data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run {python}: {source}; {SETUP_HINT}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "local ClickHouse did not start: {reason}\n--- launcher stderr (last lines) ---\n{stderr_tail}\n---\nIf chdb-core is missing or broken: {SETUP_HINT}"
    )]
    Start { reason: String, stderr_tail: String },
    #[error("HTTP request to the local ClickHouse at {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("local ClickHouse answered HTTP {status}: {body}")]
    Query { status: u16, body: String },
    #[error("stopping the local ClickHouse (pid {pid}): {detail}")]
    Stop { pid: u32, detail: String },
    #[error("internal task of the local ClickHouse failed: {0}")]
    Task(String),
}

/// A running local ClickHouse server (one launcher child process).
#[derive(Debug)]
pub struct LocalClickHouse {
    child: Mutex<Option<Child>>,
    pid: u32,
    http_port: u16,
    tcp_port: Option<u16>,
    data_dir: PathBuf,
    database: Option<String>,
    user: Option<(String, String)>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The project directory (holding `scripts/chdb_server.py` and `.build/chvenv`): env
/// `B24CH_HOME`, else the nearest ancestor of the current directory or of the running
/// executable that holds the launcher, else the current directory. Nothing of the build
/// machine is baked into the binary.
pub fn project_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("B24CH_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    [cwd.as_deref(), exe.as_deref()]
        .into_iter()
        .flatten()
        .flat_map(Path::ancestors)
        .find(|dir| dir.join(LAUNCHER).is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The launcher script, relative to the project directory.
const LAUNCHER: &str = "scripts/chdb_server.py";

/// The Python interpreter used when the options name none.
pub fn default_python() -> PathBuf {
    match std::env::var_os("B24CH_CHDB_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => project_dir().join(".build/chvenv/bin/python"),
    }
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

fn push_tail(tail: &Mutex<VecDeque<String>>, line: String) {
    if let Ok(mut t) = tail.lock() {
        if t.len() == STDERR_TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    match tail.lock() {
        Ok(t) if !t.is_empty() => t.iter().cloned().collect::<Vec<_>>().join("\n"),
        _ => "(empty)".to_string(),
    }
}

/// `READY http=127.0.0.1:8123 tcp=127.0.0.1:9000 pid=N ...` → (http port, tcp port).
fn parse_ready(line: &str) -> Option<(u16, Option<u16>)> {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let port_of = |hostport: &str| hostport.rsplit(':').next()?.parse::<u16>().ok();
    let http = port_of(&field("http=")?)?;
    let tcp = match field("tcp=")?.as_str() {
        "off" => None,
        hp => Some(port_of(hp)?),
    };
    Some((http, tcp))
}

/// Sends SIGTERM to `pid`; false when it is already gone.
fn sigterm(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is our own
    // child, which stays a zombie (so the pid cannot be reused) until we reap it.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

/// Writes `DATA/client_tls.xml`: outgoing HTTPS trusts exactly `ca` and refuses anything
/// else (no interactive certificate handler, no system CAs).
fn write_client_tls_config(data_dir: &Path, ca: &Path) -> Result<PathBuf, LocalClickHouseError> {
    let invalid = |why: String| LocalClickHouseError::InvalidOption(format!("client_ca: {why}"));
    let ca = std::path::absolute(ca).map_err(|e| invalid(e.to_string()))?;
    if !ca.is_file() {
        return Err(invalid(format!("{} is not a file", ca.display())));
    }
    let ca = ca
        .to_str()
        .ok_or_else(|| invalid(format!("{} is not UTF-8", ca.display())))?
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let xml = format!(
        "<openSSL><client>\n\
         <caConfig>{ca}</caConfig>\n\
         <loadDefaultCAFile>false</loadDefaultCAFile>\n\
         <verificationMode>strict</verificationMode>\n\
         <invalidCertificateHandler><name>RejectCertificateHandler</name></invalidCertificateHandler>\n\
         </client></openSSL>\n"
    );
    let path = data_dir.join("client_tls.xml");
    std::fs::write(&path, xml).map_err(|source| LocalClickHouseError::DataDir {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

impl LocalClickHouse {
    /// Starts the server and waits for it to answer (at most [`READY_TIMEOUT`]).
    pub async fn start(opts: LocalClickHouseOptions) -> Result<Self, LocalClickHouseError> {
        tokio::task::spawn_blocking(move || Self::start_blocking(opts))
            .await
            .map_err(|e| LocalClickHouseError::Task(e.to_string()))?
    }

    /// [`LocalClickHouse::start`] for code without a runtime (it blocks the thread).
    pub fn start_blocking(opts: LocalClickHouseOptions) -> Result<Self, LocalClickHouseError> {
        if let Some(db) = &opts.database
            && !valid_ident(db)
        {
            return Err(LocalClickHouseError::InvalidOption(format!(
                "database name {db:?}: use letters, digits and _ only"
            )));
        }
        if let Some((user, table)) = &opts.readonly_user
            && (!valid_ident(user)
                || user == "default"
                || !table
                    .split_once('.')
                    .is_some_and(|(d, t)| valid_ident(d) && valid_ident(t)))
        {
            return Err(LocalClickHouseError::InvalidOption(format!(
                "readonly user {user:?} on {table:?}: give a name and db.table of letters, digits and _"
            )));
        }
        if let Some((user, password)) = &opts.user
            && (!valid_ident(user) || user == "default" || password.is_empty())
        {
            return Err(LocalClickHouseError::InvalidOption(format!(
                "user {user:?}: use letters, digits and _ only (not 'default') and a non-empty password"
            )));
        }
        let python = opts.python.clone().unwrap_or_else(default_python);
        if !python.exists() {
            return Err(LocalClickHouseError::PythonMissing { path: python });
        }
        let launcher = opts
            .launcher
            .clone()
            .unwrap_or_else(|| project_dir().join(LAUNCHER));
        if !launcher.is_file() {
            return Err(LocalClickHouseError::LauncherMissing { path: launcher });
        }
        std::fs::create_dir_all(&opts.data_dir).map_err(|source| {
            LocalClickHouseError::DataDir {
                path: opts.data_dir.clone(),
                source,
            }
        })?;
        let data_dir = std::path::absolute(&opts.data_dir).map_err(|source| {
            LocalClickHouseError::DataDir {
                path: opts.data_dir.clone(),
                source,
            }
        })?;

        let mut cmd = Command::new(&python);
        cmd.arg("-u")
            .arg(&launcher)
            .arg("--data")
            .arg(&data_dir)
            .args(["--host", "127.0.0.1", "--http-port"])
            .arg(opts.http_port.to_string())
            .args(["--tcp-port", "0", "--parent-pid"])
            .arg(std::process::id().to_string())
            .arg("--ready-timeout")
            .arg(READY_TIMEOUT.as_secs().to_string());
        if let Some((user, table)) = &opts.readonly_user {
            cmd.arg("--readonly-user").arg(format!("{user}={table}"));
        }
        if let Some(db) = &opts.database {
            cmd.args(["--database", db]);
        }
        if let Some((user, password)) = &opts.user {
            cmd.args(["--user", user, "--password", password]);
        }
        for (name, value) in &opts.settings {
            cmd.arg("--setting").arg(format!("{name}={value}"));
        }
        if let Some(ca) = &opts.client_ca {
            cmd.arg("--config-extra")
                .arg(write_client_tls_config(&data_dir, ca)?);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| LocalClickHouseError::Spawn {
            python: python.clone(),
            source,
        })?;
        let pid = child.id();

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = child.stderr.take().map(|err| {
            let tail = Arc::clone(&stderr_tail);
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    tracing::debug!(target: "local_clickhouse", "{line}");
                    push_tail(&tail, line);
                }
            })
        });
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                // Keep draining stdout for the server's life so the pipe never fills.
                let mut reader = BufReader::new(out);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if line.starts_with("READY ") {
                        let _ = ready_tx.send(line.trim_end().to_string());
                    }
                    line.clear();
                }
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
            });
        }

        let started = Instant::now();
        let ready = ready_rx.recv_timeout(READY_TIMEOUT + Duration::from_secs(5));
        let fail = |mut child: Child, reason: String| {
            let _ = child.kill();
            let status = child.wait().ok();
            if let Some(handle) = stderr_done {
                let _ = handle.join();
            }
            let reason = match status {
                Some(s) => format!("{reason} (launcher {s})"),
                None => reason,
            };
            LocalClickHouseError::Start {
                reason,
                stderr_tail: tail_text(&stderr_tail),
            }
        };
        let line = match ready {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(fail(
                    child,
                    format!("no READY line within {}s", started.elapsed().as_secs()),
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(fail(child, "the launcher exited before READY".to_string()));
            }
        };
        let Some((http_port, tcp_port)) = parse_ready(&line) else {
            return Err(fail(child, format!("unreadable READY line {line:?}")));
        };
        tracing::info!(
            target: "local_clickhouse",
            pid, http_port, ?tcp_port, elapsed_ms = started.elapsed().as_millis() as u64,
            "local ClickHouse ready"
        );
        Ok(Self {
            child: Mutex::new(Some(child)),
            pid,
            http_port,
            tcp_port,
            data_dir,
            database: opts.database,
            user: opts.user,
            stderr_tail,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The native TCP port (on 127.0.0.1).
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// The launcher's pid (the server process).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// `(user, password)` of the full-access user, if one was configured.
    pub fn user(&self) -> Option<(&str, &str)> {
        self.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where executable UDF / dictionary scripts and `*_function.xml` go (`SYSTEM RELOAD
    /// FUNCTIONS` picks up new ones). `*_dictionary.xml` placed here is never loaded: the
    /// engine, clickhouse-local, does not read `dictionaries_config` and runs no LIFETIME
    /// dictionary updates; create dictionaries with DDL (`scripts/dictionary_xml_to_ddl.py`).
    pub fn user_scripts_dir(&self) -> PathBuf {
        self.data_dir.join("user_scripts")
    }

    /// The last lines the launcher wrote to stderr (engine errors end up there).
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }

    /// A `clickhouse` crate client for this server (its user and database, if configured).
    pub fn client(&self) -> clickhouse::Client {
        let mut c = clickhouse::Client::default().with_url(self.http_url());
        if let Some((user, password)) = &self.user {
            c = c.with_user(user).with_password(password);
        }
        if let Some(db) = &self.database {
            c = c.with_database(db);
        }
        c
    }

    /// Runs one statement over HTTP and returns the body (TabSeparated unless the SQL says
    /// `FORMAT ...`). A non-200 answer becomes [`LocalClickHouseError::Query`] with ClickHouse's text.
    pub async fn query(&self, sql: &str) -> Result<String, LocalClickHouseError> {
        let url = self.http_url();
        let http_err = |source| LocalClickHouseError::Http {
            url: url.clone(),
            source,
        };
        // A fresh client without idle connections: it works from any runtime, and no
        // keep-alive connection delays the server's shutdown.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(http_err)?;
        let mut req = client.post(format!("{url}/")).body(sql.to_string());
        if let Some(db) = &self.database {
            req = req.query(&[("database", db)]);
        }
        if let Some((user, password)) = &self.user {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        let body = resp.text().await.map_err(http_err)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(LocalClickHouseError::Query {
                status: status.as_u16(),
                body: body.trim_end().to_string(),
            })
        }
    }

    /// Sends SIGTERM and returns at once (the server stops by itself; used where waiting is
    /// not possible, e.g. at process exit).
    pub fn request_stop(&self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(child) = guard.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            // Not reaped yet, so the pid is still this child's.
            sigterm(self.pid);
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&self) -> bool {
        match self.child.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(child) => matches!(child.try_wait(), Ok(None)),
                None => false,
            },
            Err(_) => false,
        }
    }

    /// Stops the server: SIGTERM, wait, SIGKILL after [`STOP_TIMEOUT`].
    pub async fn stop(self) -> Result<(), LocalClickHouseError> {
        tokio::task::spawn_blocking(move || self.stop_blocking())
            .await
            .map_err(|e| LocalClickHouseError::Task(e.to_string()))?
    }

    /// [`LocalClickHouse::stop`] for code without a runtime (it blocks the thread).
    pub fn stop_blocking(self) -> Result<(), LocalClickHouseError> {
        let child = self.child.lock().ok().and_then(|mut g| g.take());
        let Some(mut child) = child else {
            return Ok(());
        };
        let status = terminate(&mut child, self.pid, STOP_TIMEOUT);
        match status {
            Ok((status, false)) if status.success() => Ok(()),
            Ok((status, killed)) => Err(LocalClickHouseError::Stop {
                pid: self.pid,
                detail: format!(
                    "{}launcher {status}; stderr:\n{}",
                    if killed {
                        "no exit within 15s after SIGTERM, killed; "
                    } else {
                        ""
                    },
                    self.stderr_tail()
                ),
            }),
            Err(e) => Err(LocalClickHouseError::Stop {
                pid: self.pid,
                detail: e.to_string(),
            }),
        }
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status and whether it was killed.
fn terminate(child: &mut Child, pid: u32, grace: Duration) -> std::io::Result<(ExitStatus, bool)> {
    if let Some(status) = child.try_wait()? {
        return Ok((status, false));
    }
    sigterm(pid);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    Ok((child.wait()?, true))
}

impl Drop for LocalClickHouse {
    /// Best effort: a server is never left behind (SIGTERM, then SIGKILL after 5 s).
    fn drop(&mut self) {
        let child = self.child.get_mut().ok().and_then(Option::take);
        if let Some(mut child) = child {
            let _ = terminate(&mut child, self.pid, Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ready_line() {
        assert_eq!(
            parse_ready("READY http=127.0.0.1:8123 tcp=127.0.0.1:9000 pid=5 engine_start=0.06s"),
            Some((8123, Some(9000)))
        );
        assert_eq!(
            parse_ready("READY http=[::1]:81 tcp=off pid=5"),
            Some((81, None))
        );
        assert_eq!(parse_ready("READY http=x pid=5"), None);
    }

    #[test]
    fn validates_identifiers() {
        assert!(valid_ident("b24_test_1"));
        assert!(!valid_ident("1abc"));
        assert!(!valid_ident("a-b"));
        assert!(!valid_ident("a`; DROP"));
        assert!(!valid_ident(""));
    }

    #[test]
    fn missing_python_says_what_to_run() {
        let opts = LocalClickHouseOptions {
            python: Some(PathBuf::from("/nonexistent/python")),
            ..LocalClickHouseOptions::new(std::env::temp_dir().join("b24ch-never"))
        };
        let err = LocalClickHouse::start_blocking(opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/setup_clickhouse.sh"), "{err}");
    }
}
