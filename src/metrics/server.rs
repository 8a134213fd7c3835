//! The metrics endpoint: hyper on a single-threaded tokio runtime of its own, off
//! the packet path (scrapes read the exposition the sensor renders about once a
//! second).
//!
//! No client can stall it: every connection is its own task; the request head must
//! arrive within [`HEAD_DEADLINE`] of the connection (TLS handshake included) and a
//! kept-alive connection may idle for [`KEEPALIVE_IDLE`]; past `max_connections`
//! the oldest connection that is not being answered is closed to make room, so
//! idle sockets and slow-drip clients cannot lock a scraper out. Basic-auth
//! verification (bcrypt) is [`super::auth`]: verified credentials answer from a
//! cache, the rest queue (bounded; refused with `503` past it) for one bcrypt at a
//! time, and a request that goes away takes its check with it. Responses are gzip-compressed when asked, and in OpenMetrics 1.0
//! when the scraper prefers it (Prometheus does by default).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::Exposition;
use super::auth::{Auth, Verdict};
use super::webconfig::{WebConfig, WebSource};

/// A connection must deliver its first request head (after any TLS handshake)
/// within this.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// A kept-alive connection may wait this long for its next request.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(120);
/// `Retry-After` of a `503` for a full password-check queue, in seconds: about
/// the longest a queued check waits ([`super::auth::QUEUE_WAIT`]).
const RETRY_AFTER: &str = "1";

/// Where and how the endpoint listens.
#[derive(Clone)]
pub struct WebOptions {
    /// `--web.listen-address` (repeatable): `host:port`, `[v6]:port` or `:port`
    /// (every address, IPv6 and IPv4).
    pub listen: Vec<String>,
    /// `--web.systemd-socket`: take the listening sockets systemd passes.
    pub systemd_socket: bool,
    /// `--web.telemetry-path`.
    pub path: String,
    /// `--web.config.file`, re-read when it (or a file it names) changes.
    pub config: Arc<WebSource>,
    /// `--web.max-connections`.
    pub max_connections: usize,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            listen: Vec::new(),
            systemd_socket: false,
            path: "/metrics".into(),
            config: Arc::new(WebSource::none()),
            max_connections: 512,
        }
    }
}

impl std::fmt::Debug for WebOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebOptions")
            .field("listen", &self.listen)
            .field("systemd_socket", &self.systemd_socket)
            .field("path", &self.path)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl WebOptions {
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty() || self.systemd_socket
    }
}

/// Connections the kernel holds for `accept` (capped by `net.core.somaxconn`), as
/// Go listens: std's 128 overflowed under a connection flood, and a dropped SYN
/// costs the scraper a 1 s retransmission.
const BACKLOG: libc::c_int = 4096;

fn bind(addr: &str) -> io::Result<TcpListener> {
    use std::os::fd::AsRawFd;
    // `:PORT` is every address, IPv6 and IPv4 alike (a dual-stack socket, as Go's
    // `:PORT` in exporter-toolkit); IPv4 only where the host has no IPv6.
    let l = match addr.strip_prefix(':') {
        Some(port) => TcpListener::bind(format!("[::]:{port}"))
            .or_else(|_| TcpListener::bind(format!("0.0.0.0:{port}"))),
        None => TcpListener::bind(addr),
    }?;
    // SAFETY: `l` is a listening socket we own; listening again only resizes its
    // accept queue.
    if unsafe { libc::listen(l.as_raw_fd(), BACKLOG) } != 0 {
        tracing::debug!("metrics listener backlog: {}", io::Error::last_os_error());
    }
    Ok(l)
}

/// The listening sockets systemd passed (`LISTEN_PID`/`LISTEN_FDS`, from fd 3).
fn systemd_listeners() -> io::Result<Vec<TcpListener>> {
    use std::os::fd::FromRawFd;
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !pid_ok || n < 1 {
        return Err(io::Error::other(
            "no socket activation file descriptors found (LISTEN_PID/LISTEN_FDS)",
        ));
    }
    let mut out = Vec::new();
    for fd in 3..3 + n.min(64) {
        // SAFETY: systemd hands these descriptors to this process (LISTEN_PID is
        // ours); each is taken once, here.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        l.local_addr()
            .map_err(|e| io::Error::other(format!("systemd socket fd {fd}: {e}")))?;
        out.push(l);
    }
    Ok(out)
}

/// Serves the endpoint from a background thread. Returns the bound addresses (port
/// 0 becomes the real port).
pub fn serve(opts: &WebOptions, exposition: Exposition) -> io::Result<Vec<SocketAddr>> {
    let mut listeners = Vec::new();
    if opts.systemd_socket {
        listeners.extend(
            systemd_listeners()
                .map_err(|e| io::Error::new(e.kind(), format!("--web.systemd-socket: {e}")))?,
        );
    }
    for a in &opts.listen {
        listeners.push(
            bind(a)
                .map_err(|e| io::Error::new(e.kind(), format!("--web.listen-address {a}: {e}")))?,
        );
    }
    let mut addrs = Vec::new();
    for l in &listeners {
        l.set_nonblocking(true)?;
        addrs.push(l.local_addr()?);
    }
    let ctx = Arc::new(Ctx {
        path: opts.path.clone(),
        exposition,
        web: opts.config.clone(),
        auth: Auth::default(),
        bucket: Mutex::new(None),
        conns: Mutex::new(Registry::default()),
        cap: opts.max_connections.max(1),
        epoch: Instant::now(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("metrics-auth")
        .build()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for l in listeners {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(l) => tasks.push(tokio::spawn(accept_loop(l, ctx.clone()))),
                        Err(e) => tracing::error!("metrics listener: {e}"),
                    }
                }
                for t in tasks {
                    let _ = t.await;
                }
            })
        })?;
    Ok(addrs)
}

struct Ctx {
    path: String,
    exposition: Exposition,
    web: Arc<WebSource>,
    auth: Auth,
    /// Rate-limit tokens and when they were last counted.
    bucket: Mutex<Option<(f64, Instant)>>,
    conns: Mutex<Registry>,
    cap: usize,
    epoch: Instant,
}

impl Ctx {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// One connection's state, shared between its task and the accept loop.
struct Conn {
    /// Requests being answered now.
    inflight: AtomicUsize,
    /// When the connection last became idle (ms since the server started).
    idle_since: AtomicU64,
    /// Requests answered (0: still waiting for the first head).
    served: AtomicU64,
    kill: tokio::sync::Notify,
}

/// Open connections by age (ids grow).
#[derive(Default)]
struct Registry {
    next: u64,
    live: BTreeMap<u64, Arc<Conn>>,
}

async fn accept_loop(listener: tokio::net::TcpListener, ctx: Arc<Ctx>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("metrics endpoint accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let conn = Arc::new(Conn {
            inflight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(ctx.now_ms()),
            served: AtomicU64::new(0),
            kill: tokio::sync::Notify::new(),
        });
        let id = {
            let Ok(mut reg) = ctx.conns.lock() else {
                return;
            };
            if reg.live.len() >= ctx.cap {
                // Make room by closing the oldest connection nobody is being answered on.
                let victim = reg
                    .live
                    .iter()
                    .find(|(_, c)| c.inflight.load(Ordering::Relaxed) == 0)
                    .map(|(id, _)| *id);
                match victim.and_then(|v| reg.live.remove(&v)) {
                    Some(c) => c.kill.notify_one(),
                    None => {
                        tracing::debug!(%peer, "metrics endpoint full; connection refused");
                        continue;
                    }
                }
            }
            reg.next += 1;
            let id = reg.next;
            reg.live.insert(id, conn.clone());
            id
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            watch(stream, &ctx, &conn).await;
            if let Ok(mut reg) = ctx.conns.lock() {
                reg.live.remove(&id);
            }
        });
    }
}

/// Runs one connection until it ends, is evicted, or idles past its deadline.
async fn watch(stream: tokio::net::TcpStream, ctx: &Arc<Ctx>, conn: &Arc<Conn>) {
    let work = connection(stream, ctx.clone(), conn.clone());
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut work => return,
            _ = conn.kill.notified() => return,
            _ = tick.tick() => {
                if conn.inflight.load(Ordering::Relaxed) == 0 {
                    let idle = ctx.now_ms().saturating_sub(conn.idle_since.load(Ordering::Relaxed));
                    let limit = if conn.served.load(Ordering::Relaxed) == 0 {
                        HEAD_DEADLINE
                    } else {
                        KEEPALIVE_IDLE
                    };
                    if idle > limit.as_millis() as u64 {
                        return;
                    }
                }
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, ctx: Arc<Ctx>, conn: Arc<Conn>) {
    let cfg = match ctx.web.current() {
        Ok(c) => c,
        Err(_) => return, // logged by the source; fail closed
    };
    let svc = {
        let (ctx, conn) = (ctx.clone(), conn.clone());
        hyper::service::service_fn(move |req| {
            let (ctx, conn) = (ctx.clone(), conn.clone());
            async move {
                conn.inflight.fetch_add(1, Ordering::Relaxed);
                let resp = respond(req, &ctx).await;
                conn.served.fetch_add(1, Ordering::Relaxed);
                conn.idle_since.store(ctx.now_ms(), Ordering::Relaxed);
                conn.inflight.fetch_sub(1, Ordering::Relaxed);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    match &cfg.tls {
        Some(tls) => {
            let mut first = [0u8; 1];
            if matches!(stream.peek(&mut first).await, Ok(1)) && first[0].is_ascii_alphabetic() {
                // A TLS connection opens with a handshake record (0x16); a letter is
                // an HTTP method: say so, as Go's net/http and exporter-toolkit do,
                // instead of a handshake failure the client cannot explain.
                return plain_http_on_tls(stream).await;
            }
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let Ok(stream) = acceptor.accept(stream).await else {
                return; // not TLS, a refused client certificate, ...
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(stream);
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(16)
                    .serve_connection(io, svc)
                    .await;
            } else {
                let _ = http1().serve_connection(io, svc).await;
            }
        }
        None => {
            let _ = http1().serve_connection(TokioIo::new(stream), svc).await;
        }
    }
}

/// What a plain HTTP request to the TLS port gets (the words of Go's net/http).
pub const HTTP_TO_HTTPS: &str =
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Answers a plain HTTP request on a TLS port with a 400 and closes. The request is
/// read (up to 64 KiB, while the client sends) after the answer, so the close does
/// not reset the connection before the client has read it.
async fn plain_http_on_tls(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.write_all(HTTP_TO_HTTPS.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

fn http1() -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    // hyper's head timer also runs between requests, so it is the keep-alive idle
    // limit; the first head's deadline is the watchdog's (`watch`).
    b.timer(TokioTimer::new())
        .header_read_timeout(KEEPALIVE_IDLE)
        .keep_alive(true)
        .max_buf_size(16 * 1024);
    b
}

const LANDING: &str = "<html><head><title>apiwatch</title></head><body><h1>apiwatch</h1>\
<p>Passive API-traffic anomaly detector.</p><p><a href=\"METRICS\">Metrics</a></p></body></html>\n";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn respond(req: Request<Incoming>, ctx: &Ctx) -> Response<Full<Bytes>> {
    let cfg = match ctx.web.current() {
        Ok(c) => c,
        Err(_) => {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
    };
    let mut resp = answer(&req, ctx, &cfg).await;
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    if req.method() == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn answer(req: &Request<Incoming>, ctx: &Ctx, cfg: &WebConfig) -> Response<Full<Bytes>> {
    if let Some((interval, burst)) = cfg.rate_limit
        && !ctx.allow(interval, burst)
    {
        return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
    }
    if !cfg.users.is_empty() {
        let authorization = req.headers().get(header::AUTHORIZATION);
        match ctx
            .auth
            .verdict(&cfg.users, authorization.map(HeaderValue::as_bytes))
            .await
        {
            Verdict::Admit => {}
            Verdict::Deny => {
                let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"apiwatch\""),
                );
                return r;
            }
            Verdict::Busy => {
                let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
                return r;
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    if path == ctx.path {
        let header_text = |h| {
            req.headers()
                .get(h)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("")
        };
        let om = prefers_openmetrics(header_text(header::ACCEPT));
        let mut text = ctx.exposition.get();
        if !cfg.users.is_empty() {
            ctx.auth.metrics(&mut text);
        }
        let (body, ctype) = if om {
            (super::render::openmetrics(&text), OPENMETRICS)
        } else {
            (text, TEXT)
        };
        let gzip = accepts_gzip(header_text(header::ACCEPT_ENCODING));
        let body = if gzip {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = z.write_all(body.as_bytes());
            z.finish().unwrap_or_default()
        } else {
            body.into_bytes()
        };
        let mut r = Response::new(Full::new(Bytes::from(body)));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        r.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Encoding"),
        );
        if gzip {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        return r;
    }
    if path == "/" {
        let mut r = Response::new(Full::new(Bytes::from(
            LANDING.replace("METRICS", &ctx.path),
        )));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    plain(StatusCode::NOT_FOUND, "Not Found\n")
}

impl Ctx {
    /// Token bucket as Go's `rate.NewLimiter(rate.Every(interval), burst)`: starts
    /// full; a burst of 0 admits nothing.
    fn allow(&self, interval: Duration, burst: u32) -> bool {
        let Ok(mut b) = self.bucket.lock() else {
            return false;
        };
        let now = Instant::now();
        let (tokens, last) = b.get_or_insert((f64::from(burst), now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() / interval.as_secs_f64())
            .min(f64::from(burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Media ranges of an `Accept` header with their quality.
fn media_ranges(accept: &str) -> impl Iterator<Item = (&str, f32)> {
    accept.split(',').map(|r| {
        let mut parts = r.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (media, q)
    })
}

/// Whether the scraper ranks OpenMetrics at least as high as the text format.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let q = |want: &str| {
        media_ranges(accept)
            .filter(|(m, _)| m.eq_ignore_ascii_case(want))
            .map(|(_, q)| q)
            .fold(0.0f32, f32::max)
    };
    let om = q("application/openmetrics-text");
    om > 0.0 && om >= q("text/plain")
}

/// Whether `Accept-Encoding` admits gzip.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    media_ranges(accept_encoding)
        .any(|(c, q)| (c.eq_ignore_ascii_case("gzip") || c == "*") && q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn get(addr: SocketAddr, head: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "{head}").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn start(listen: &str) -> (Exposition, SocketAddr) {
        let exp = Exposition::default();
        exp.set(
            "# HELP apiwatch_x_total X.\n# TYPE apiwatch_x_total counter\napiwatch_x_total 3\n"
                .into(),
        );
        let opts = WebOptions {
            listen: vec![listen.into()],
            ..WebOptions::default()
        };
        let addr = serve(&opts, exp.clone()).unwrap()[0];
        (exp, addr)
    }

    #[test]
    fn answers_scrapes_in_the_format_asked_for() {
        let (_, addr) = start("127.0.0.1:0");
        let m = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
        assert!(m.contains("content-type: text/plain; version=0.0.4"), "{m}");
        assert!(m.ends_with("apiwatch_x_total 3\n"), "{m}");
        let om = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
        );
        assert!(
            om.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{om}"
        );
        assert!(
            om.contains("# TYPE apiwatch_x counter\napiwatch_x_total 3\n# EOF\n"),
            "{om}"
        );
        let gz = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n",
        );
        assert!(gz.contains("content-encoding: gzip"), "{gz}");
        assert!(
            get(
                addr,
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .contains("href=\"/metrics\"")
        );
        assert!(
            get(
                addr,
                "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .starts_with("HTTP/1.1 404")
        );
        assert!(get(addr, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 405"));
        // Keep-alive: two requests on one connection.
        let two = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(two.matches("HTTP/1.1 200 OK").count(), 2, "{two}");
    }

    #[test]
    fn negotiation_follows_quality_values() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(prefers_openmetrics(prom));
        assert!(!prefers_openmetrics("text/plain;version=0.0.4"));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;q=0.2,text/plain"
        ));
        assert!(accepts_gzip("gzip, deflate"));
        assert!(!accepts_gzip("gzip;q=0, identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn a_bare_port_listens_on_ipv6_and_ipv4() {
        let (_, addr) = start(":0");
        // Where the host has IPv6 the listener must be the dual-stack one: an
        // IPv4-only bind would make the `::1` check below vacuous.
        let host_has_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
        assert_eq!(addr.is_ipv6(), host_has_ipv6, "{addr}");
        for host in ["127.0.0.1", "::1"] {
            let target = SocketAddr::new(host.parse().unwrap(), addr.port());
            if host == "::1" && !host_has_ipv6 {
                continue;
            }
            let out = get(
                target,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            assert!(out.ends_with("apiwatch_x_total 3\n"), "{host}: {out}");
        }
    }

    #[test]
    fn past_the_cap_the_oldest_idle_connection_makes_room() {
        let exp = Exposition::default();
        exp.set("apiwatch_up 1\n".into());
        let opts = WebOptions {
            listen: vec!["127.0.0.1:0".into()],
            max_connections: 4,
            ..WebOptions::default()
        };
        let addr = serve(&opts, exp).unwrap()[0];
        let idle: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let out = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(out.ends_with("apiwatch_up 1\n"), "{out}");
        // The first idle connections were closed to make room.
        let mut first = &idle[0];
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(first.read(&mut buf).unwrap_or(0), 0);
    }
}
