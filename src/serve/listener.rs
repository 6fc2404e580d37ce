//! The TLS listener of `serve`: accepts TCP connections, runs each handshake in its own task
//! (so one slow or silent client cannot hold up the others) and hands finished TLS streams to
//! [`super::conn::serve`]. It also re-reads the certificate files on an interval.
use super::tls::{Reload, ReloadingCert};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are compared with what is served.
pub const CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    /// The accept and reload tasks end with the listener (when `serve` stops).
    _tasks: AbortOnDrop,
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl TlsListener {
    /// `local` is `tcp`'s address (the caller has it already).
    pub fn new(
        tcp: TcpListener,
        local: SocketAddr,
        cert: Arc<ReloadingCert>,
        reload_every: Duration,
    ) -> Result<Self, rustls::Error> {
        let acceptor = TlsAcceptor::from(Arc::new(super::tls::server_config(cert.clone())?));
        let (tx, incoming) = mpsc::channel(64);
        let accept = tokio::spawn(accept_loop(tcp, acceptor, tx));
        let reload = tokio::spawn(reload_loop(cert, reload_every));
        Ok(Self {
            incoming,
            local,
            _tasks: AbortOnDrop(vec![accept.abort_handle(), reload.abort_handle()]),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(conn) => conn,
            // The accept task ended (it only does when aborted): no connection ever again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like; accepting again at once would spin.
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => drop(tx.send((tls, peer)).await),
                Ok(Err(e)) => log_handshake_error(peer, &e),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// A client that rejects our certificate says so with an alert: worth a warning, since it is
/// most likely the user's ClickHouse not trusting the CA. Anything else (scanners, plain HTTP
/// sent to the HTTPS port) is debug noise.
fn log_handshake_error(peer: SocketAddr, e: &std::io::Error) {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::AlertReceived(alert)) => tracing::warn!(
            %peer,
            ?alert,
            "the client refused serve's TLS certificate; does it trust the CA that issued it? (for ClickHouse: openSSL.client.caConfig, see sql/README.md)"
        ),
        _ => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
    }
}

async fn reload_loop(cert: Arc<ReloadingCert>, every: Duration) {
    let mut last_problem = String::new();
    loop {
        tokio::time::sleep(every).await;
        match cert.reload_if_changed().await {
            Reload::Unchanged => {}
            Reload::Reloaded(info) => {
                last_problem.clear();
                tracing::info!(
                    names = ?info.names,
                    not_after = %info.not_after,
                    "TLS certificate files changed; serving the new certificate"
                );
                if let Some(p) = info.validity_problem(chrono::Utc::now()) {
                    tracing::warn!("{p}");
                }
            }
            Reload::Rejected(e) => {
                // Once per problem, not every interval.
                let problem = e.to_string();
                if problem != last_problem {
                    tracing::warn!(error = %problem, "TLS certificate files changed but cannot be served; still serving the previous certificate");
                    last_problem = problem;
                }
            }
        }
    }
}

/// The client's address as the handlers see it (`ConnectInfo<PeerAddr>`, set per connection
/// by [`super::conn`]), for plain and TLS listeners alike.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);
