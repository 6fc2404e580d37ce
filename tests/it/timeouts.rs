//! Issue 10, item 9: nobody holds `serve` or a ClickHouse call forever.
//!
//! - a client that trickles its request head, or sends nothing, is disconnected after
//!   `proxy.header_timeout_secs`;
//! - a request body that never completes gets 408 after `proxy.body_timeout_secs`;
//! - a ClickHouse that accepts a connection and never answers fails the call after
//!   `clickhouse.request_timeout_secs`, with an error naming the setting.
//!
//! The assertions wait for events (the server closes the socket, the call fails); the only
//! clock is a generous cap that turns "never" into a failure.
use b24ch::clickhouse::Connection;
use b24ch::commands::serve;
use b24ch::config::from_toml_str;
use b24ch::portal;
use bitrix24_emulator::{DataSizes, PortalConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "timeouts-test-token-0123456789";
/// "Never" for these tests: far above every configured timeout (1–2 s).
const CAP: Duration = Duration::from_secs(60);

async fn start(extra: &str) -> (serve::RunningServe, portal::PortalConnection) {
    start_with(50, extra).await
}

async fn start_with(deals: u64, extra: &str) -> (serve::RunningServe, portal::PortalConnection) {
    let mut cfg = from_toml_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n{extra}\n"
    ))
    .unwrap();
    let demo = PortalConfig {
        sizes: DataSizes {
            deals,
            ..DataSizes::default()
        },
        time_scale: 1000.0,
        ..PortalConfig::default()
    };
    let p = portal::connect(&mut cfg, demo).await.unwrap();
    let s = serve::start(Arc::new(cfg), &p).await.unwrap();
    (s, p)
}

/// Reads until the server closes the connection; what it sent before.
async fn read_until_closed(mut r: tokio::net::tcp::OwnedReadHalf) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let (s, _p) = start("header_timeout_secs = 1").await;
    // Taken before connecting: the server's clock starts at accept, which may come before
    // `connect` returns here on a busy machine.
    let started = Instant::now();
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let closed = tokio::spawn(read_until_closed(r));
    w.write_all(b"GET /healthz HTTP/1.1\r\nHost: b24ch\r\n")
        .await
        .unwrap();
    // One more header line every 100 ms, forever: the request head never completes.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if w.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
        }
    };
    let got = tokio::select! {
        got = closed => got.unwrap(),
        _ = trickle => panic!("the server stopped reading but did not close"),
        _ = tokio::time::sleep(CAP) => panic!("a client trickling its headers was still connected after {CAP:?}"),
    };
    assert!(
        got.is_empty(),
        "no response to a request head that never completed: {:?}",
        String::from_utf8_lossy(&got)
    );
    // Closed by the header timeout, not by anything sooner.
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A client that sends nothing at all is closed too.
    let silent = TcpStream::connect(s.addr).await.unwrap();
    let (r, _w) = silent.into_split();
    let got = tokio::time::timeout(CAP, read_until_closed(r))
        .await
        .expect("a silent client was still connected");
    assert!(got.is_empty());

    // Well-behaved clients are served as before.
    let ok = reqwest::get(format!("{}/healthz", s.url())).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_never_completes_gets_408() {
    let (s, _p) = start("body_timeout_secs = 1").await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let answer = tokio::spawn(read_until_closed(r));
    // 1000 bytes announced, 12 sent, then silence (the connection stays open).
    w.write_all(
        format!(
            "POST /v1/dictionaries/user HTTP/1.1\r\nHost: b24ch\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: text/tab-separated-values\r\nContent-Length: 1000\r\n\r\n1\n2\n3\n4\n5\n6\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(CAP, answer)
        .await
        .expect("a request whose body never completed got no answer")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("proxy.body_timeout_secs"), "{text}");
    drop(w);

    // A body sent in full is read as before.
    let ok = reqwest::Client::new()
        .post(format!(
            "{}/v1/dictionaries/user?format=TabSeparated&columns=ID,NAME",
            s.url()
        ))
        .bearer_auth(TOKEN)
        .body("1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_whose_client_stopped_reading_is_cut_and_frees_its_slot() {
    // ~27 MB of JSONEachRow: far more than the socket buffers hold.
    let (s, _p) = start_with(12_000, "stall_timeout_secs = 1").await;
    let url = format!("{}/v1/entities/crm_deal/rows?format=JSONEachRow", s.url());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    w.write_all(
        format!(
            "GET /v1/entities/crm_deal/rows?format=JSONEachRow HTTP/1.1\r\nHost: b24ch\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // This client reads nothing. While its load runs, the entity is busy…
    let http = reqwest::Client::new();
    let status = || async {
        http.get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let started = Instant::now();
    let mut saw_busy = false;
    loop {
        match status().await {
            503 => saw_busy = true,
            // …until the stalled response is cut and the slot is free again.
            200 if saw_busy => break,
            other => assert!(
                !saw_busy || other == 503,
                "unexpected status {other} after the entity was busy"
            ),
        }
        assert!(
            started.elapsed() < CAP,
            "the load of a client that stopped reading still held its slot after {CAP:?} (busy seen: {saw_busy})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stalled connection was closed with its body incomplete (no final chunk).
    let got = tokio::time::timeout(CAP, read_until_closed(r))
        .await
        .expect("the stalled connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the cut body must not look complete"
    );
}

/// A "ClickHouse" that accepts connections, reads what it is sent and never answers.
async fn silent_clickhouse() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_that_never_answers_fails_the_call_with_the_setting_named() {
    let (addr, server) = silent_clickhouse().await;
    let cfg = from_toml_str(&format!(
        "[clickhouse]\nurl = \"http://{addr}\"\nrequest_timeout_secs = 1\nconnect_timeout_secs = 1\n"
    ))
    .unwrap();
    let conn = Connection::connect(&cfg.clickhouse).unwrap();

    let e = tokio::time::timeout(CAP, conn.version())
        .await
        .expect("a query to a silent ClickHouse never ended")
        .unwrap_err()
        .to_string();
    assert!(e.contains("did not answer within 1 s"), "{e}");
    assert!(e.contains("clickhouse.request_timeout_secs"), "{e}");

    let e = tokio::time::timeout(CAP, conn.execute("CREATE DATABASE x"))
        .await
        .expect("a statement to a silent ClickHouse never ended")
        .unwrap_err()
        .to_string();
    assert!(e.contains("clickhouse.request_timeout_secs"), "{e}");
    assert!(
        e.contains("CREATE DATABASE x"),
        "the statement is named: {e}"
    );

    // `sync`'s streamed INSERT: its final answer is bounded too.
    let mut insert = conn.insert_formatted("INSERT INTO t FORMAT JSONEachRow");
    let sent = async {
        insert
            .send(bytes::Bytes::from_static(b"{\"x\":1}\n"))
            .await?;
        insert.end().await
    };
    let e = tokio::time::timeout(CAP, sent)
        .await
        .expect("an INSERT into a silent ClickHouse never ended")
        .unwrap_err();
    let e = conn.insert_error(&e);
    assert!(e.contains("clickhouse.request_timeout_secs"), "{e}");
    server.abort();
}

#[test]
fn zero_timeouts_are_refused_with_the_key_named() {
    for key in [
        "[clickhouse]\nconnect_timeout_secs = 0",
        "[clickhouse]\nrequest_timeout_secs = 0",
        "[proxy]\nheader_timeout_secs = 0",
        "[proxy]\nbody_timeout_secs = 0",
        "[proxy]\nstall_timeout_secs = 0",
    ] {
        let e = from_toml_str(key).unwrap_err().to_string();
        let name = key.split('\n').nth(1).unwrap().split(' ').next().unwrap();
        assert!(e.contains(name) && e.contains("at least 1"), "{key}: {e}");
    }
}
