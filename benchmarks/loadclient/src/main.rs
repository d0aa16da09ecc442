//! Load client for the rloop benchmarks.
//!
//! Opens `--conns` connections on a single-threaded tokio runtime; each
//! connection keeps exactly one request in flight:
//!   * `echo`: send `--size` bytes, wait until all of them came back, repeat;
//!   * `http`: send a GET, read one Content-Length framed response, repeat;
//!   * `churn`: connect, send `--size` bytes, read them back, close, repeat
//!     (one message per connection: the cost of setting up and tearing down);
//!   * `udp`: each "connection" is a UDP socket connected to the server: send
//!     one `--size` datagram, wait for it to come back, repeat (a datagram
//!     not back within 100 ms counts as an error and the next one is sent).
//!
//! With `--tls` (echo and http) every connection first does a TLS 1.3
//! handshake (rustls, ring provider) and then runs the same loop over TLS;
//! `--tls-cert PEM` pins the server's certificate (see `loadclient::tls`).
//!
//! Runs `--warmup` seconds unmeasured, then `--duration` seconds measured, and
//! prints one JSON object. When `--server-pid` is given, the server's
//! utime+stime (/proc/PID/stat) is sampled exactly at the start and the end of
//! the measured window. A watchdog thread ends the process if anything stalls.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use loadclient::{
    clock_ticks_per_second, content_length, find_header_end, loopback_host, pin_to_cpu,
    process_cpu_ticks, tls, Args,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

const HTTP_REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: rloop-loadclient\r\n\r\n";
/// Extra time allowed after the measured window before everything is abandoned.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    Http,
    Churn,
    Udp,
}

/// How long a UDP client waits for its echo before it counts it lost.
const UDP_LOSS_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Clone)]
struct Plan {
    addr: SocketAddr,
    mode: Mode,
    size: usize,
    start: Instant,
    end: Instant,
    hard: Instant,
    /// Some: every connection is TLS (handshake first).
    tls: Option<TlsConnector>,
}

#[derive(Default)]
struct ConnResult {
    messages: u64,
    bytes: u64,
    errors: u64,
    latencies_ns: Vec<u64>,
    /// Negotiated TLS version and cipher suite, when the connection is TLS.
    tls: Option<String>,
}

impl ConnResult {
    fn record(&mut self, plan: &Plan, begin: Instant, done: Instant, bytes: usize) {
        if done >= plan.start && done <= plan.end {
            self.messages += 1;
            self.bytes += bytes as u64;
            self.latencies_ns
                .push(u64::try_from((done - begin).as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

async fn connect(plan: &Plan) -> Option<TcpStream> {
    match timeout_at(plan.hard, TcpStream::connect(plan.addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
        Ok(Err(e)) => {
            eprintln!("loadclient: connect failed: {e}");
            None
        }
        Err(_) => None,
    }
}

/// The TLS handshake over a connected socket (within the plan's deadline).
async fn handshake(
    plan: &Plan,
    connector: &TlsConnector,
    stream: TcpStream,
    res: &mut ConnResult,
) -> Option<TlsStream<TcpStream>> {
    let name = ServerName::from(plan.addr.ip());
    match timeout_at(plan.hard, connector.connect(name, stream)).await {
        Ok(Ok(tls)) => {
            res.tls = Some(tls::describe(tls.get_ref().1));
            Some(tls)
        }
        Ok(Err(e)) => {
            eprintln!("loadclient: TLS handshake failed: {e}");
            None
        }
        Err(_) => None,
    }
}

async fn echo_conn(plan: Plan) -> ConnResult {
    let mut res = ConnResult::default();
    let Some(mut stream) = connect(&plan).await else {
        res.errors += 1;
        return res;
    };
    match &plan.tls {
        None => {
            let (rd, wr) = stream.split();
            echo_loop(&plan, rd, wr, &mut res).await;
        }
        Some(connector) => match handshake(&plan, connector, stream, &mut res).await {
            Some(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                echo_loop(&plan, rd, wr, &mut res).await;
            }
            None => res.errors += 1,
        },
    }
    res
}

async fn echo_loop<R, W>(plan: &Plan, mut rd: R, mut wr: W, res: &mut ConnResult)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let message: Vec<u8> = (0..plan.size).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; plan.size];
    let mut verified = false;
    loop {
        let begin = Instant::now();
        if begin >= plan.end {
            break;
        }
        // Write and read concurrently so large messages cannot deadlock on
        // full socket buffers. The flush is a no-op for TCP; over TLS it
        // pushes out records the socket did not take yet.
        let send = async {
            wr.write_all(&message).await?;
            wr.flush().await
        };
        let io = async { tokio::try_join!(send, rd.read_exact(&mut buf)) };
        match timeout_at(plan.hard, io).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("loadclient: echo I/O error: {e}");
                res.errors += 1;
                break;
            }
            Err(_) => {
                res.errors += 1;
                break;
            }
        }
        if !verified {
            if buf != message {
                eprintln!("loadclient: echo payload mismatch");
                res.errors += 1;
                break;
            }
            verified = true;
        }
        res.record(plan, begin, Instant::now(), plan.size);
    }
}

async fn churn_conn(plan: Plan) -> ConnResult {
    let mut res = ConnResult::default();
    let message: Vec<u8> = (0..plan.size).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; plan.size];
    loop {
        let begin = Instant::now();
        if begin >= plan.end {
            break;
        }
        let Some(mut stream) = connect(&plan).await else {
            res.errors += 1;
            break;
        };
        let (mut rd, mut wr) = stream.split();
        let io = async { tokio::try_join!(wr.write_all(&message), rd.read_exact(&mut buf)) };
        match timeout_at(plan.hard, io).await {
            Ok(Ok(_)) if buf == message => {}
            Ok(Ok(_)) => {
                eprintln!("loadclient: churn payload mismatch");
                res.errors += 1;
                break;
            }
            Ok(Err(e)) => {
                eprintln!("loadclient: churn I/O error: {e}");
                res.errors += 1;
                break;
            }
            Err(_) => {
                res.errors += 1;
                break;
            }
        }
        drop(stream);
        res.record(&plan, begin, Instant::now(), plan.size);
    }
    res
}

async fn udp_conn(plan: Plan) -> ConnResult {
    let mut res = ConnResult::default();
    let local: SocketAddr = if plan.addr.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadclient: UDP bind failed: {e}");
            res.errors += 1;
            return res;
        }
    };
    if let Err(e) = sock.connect(plan.addr).await {
        eprintln!("loadclient: UDP connect failed: {e}");
        res.errors += 1;
        return res;
    }
    let message: Vec<u8> = (0..plan.size).map(|i| (i % 251) as u8).collect();
    // One byte more than sent: a longer datagram shows as a mismatch.
    let mut buf = vec![0u8; plan.size + 1];
    loop {
        let begin = Instant::now();
        if begin >= plan.end {
            break;
        }
        if let Err(e) = sock.send(&message).await {
            eprintln!("loadclient: UDP send failed: {e}");
            res.errors += 1;
            break;
        }
        match tokio::time::timeout(UDP_LOSS_TIMEOUT, sock.recv(&mut buf)).await {
            Ok(Ok(n)) if buf[..n] == message[..] => {
                res.record(&plan, begin, Instant::now(), n);
            }
            Ok(Ok(_)) => res.errors += 1,
            Ok(Err(e)) => {
                eprintln!("loadclient: UDP receive failed: {e}");
                res.errors += 1;
                break;
            }
            // Lost (or late: a late echo is taken as the next one's).
            Err(_) => res.errors += 1,
        }
    }
    res
}

/// Read one Content-Length framed response; returns its size in bytes.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    pending: &mut Vec<u8>,
) -> Result<usize, String> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find_header_end(pending) {
            let head = &pending[..end];
            if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                return Err("non-200 response".to_string());
            }
            let body = content_length(head).ok_or("bad Content-Length")?;
            let total = end + 4 + body;
            while pending.len() < total {
                let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("EOF inside body".to_string());
                }
                pending.extend_from_slice(&chunk[..n]);
            }
            pending.drain(..total);
            return Ok(total);
        }
        if pending.len() > 65536 {
            return Err("response header too large".to_string());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("EOF before response".to_string());
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

async fn http_conn(plan: Plan) -> ConnResult {
    let mut res = ConnResult::default();
    let Some(mut stream) = connect(&plan).await else {
        res.errors += 1;
        return res;
    };
    match &plan.tls {
        None => http_loop(&plan, &mut stream, &mut res).await,
        Some(connector) => match handshake(&plan, connector, stream, &mut res).await {
            Some(mut tls) => http_loop(&plan, &mut tls, &mut res).await,
            None => res.errors += 1,
        },
    }
    res
}

async fn http_loop<S: AsyncRead + AsyncWrite + Unpin>(
    plan: &Plan,
    stream: &mut S,
    res: &mut ConnResult,
) {
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let begin = Instant::now();
        if begin >= plan.end {
            break;
        }
        let io = async {
            stream
                .write_all(HTTP_REQUEST)
                .await
                .map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())?;
            read_response(stream, &mut pending).await
        };
        match timeout_at(plan.hard, io).await {
            Ok(Ok(n)) => res.record(plan, begin, Instant::now(), n),
            Ok(Err(e)) => {
                eprintln!("loadclient: http error: {e}");
                res.errors += 1;
                break;
            }
            Err(_) => {
                res.errors += 1;
                break;
            }
        }
    }
}

fn percentile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_ns.len() - 1) as f64 * q).round() as usize;
    sorted_ns[idx.min(sorted_ns.len() - 1)] as f64 / 1000.0
}

fn json_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_string(), |x| x.to_string())
}

async fn run(plan: Plan, conns: usize, server_pid: Option<u32>) -> String {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        match plan.mode {
            Mode::Echo => tasks.spawn(echo_conn(plan.clone())),
            Mode::Http => tasks.spawn(http_conn(plan.clone())),
            Mode::Churn => tasks.spawn(churn_conn(plan.clone())),
            Mode::Udp => tasks.spawn(udp_conn(plan.clone())),
        };
    }

    sleep_until(plan.start).await;
    let server_cpu0 = server_pid.and_then(|p| process_cpu_ticks(Some(p)));
    let client_cpu0 = process_cpu_ticks(None);
    sleep_until(plan.end).await;
    let server_cpu1 = server_pid.and_then(|p| process_cpu_ticks(Some(p)));
    let client_cpu1 = process_cpu_ticks(None);

    let mut total = ConnResult::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => {
                total.messages += r.messages;
                total.bytes += r.bytes;
                total.errors += r.errors;
                total.latencies_ns.extend(r.latencies_ns);
                if total.tls.is_none() {
                    total.tls = r.tls;
                }
            }
            Err(_) => total.errors += 1,
        }
    }
    total.latencies_ns.sort_unstable();
    let window = (plan.end - plan.start).as_secs_f64();
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    format!(
        concat!(
            "{{\"mode\":\"{}\",\"size\":{},\"conns\":{},\"window_s\":{:.6},",
            "\"messages\":{},\"msgs_per_s\":{:.1},\"mib_per_s\":{:.3},",
            "\"p50_us\":{:.1},\"p99_us\":{:.1},\"errors\":{},",
            "\"server_cpu_ticks\":{},\"client_cpu_ticks\":{},\"clk_tck\":{},",
            "\"tls\":{}}}"
        ),
        match plan.mode {
            Mode::Echo => "echo",
            Mode::Http => "http",
            Mode::Churn => "churn",
            Mode::Udp => "udp",
        },
        plan.size,
        conns,
        window,
        total.messages,
        total.messages as f64 / window,
        total.bytes as f64 / window / (1024.0 * 1024.0),
        percentile_us(&total.latencies_ns, 0.50),
        percentile_us(&total.latencies_ns, 0.99),
        total.errors,
        json_opt(delta(server_cpu0, server_cpu1)),
        json_opt(delta(client_cpu0, client_cpu1)),
        clock_ticks_per_second(),
        total
            .tls
            .map_or_else(|| "null".to_string(), |t| format!("\"{t}\"")),
    )
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("loadclient: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let args = Args::from_env()?;
    let mode = match args.get_str("mode", "echo").as_str() {
        "echo" => Mode::Echo,
        "http" => Mode::Http,
        "churn" => Mode::Churn,
        "udp" => Mode::Udp,
        other => return Err(format!("unknown --mode {other:?} (echo|http|churn|udp)")),
    };
    let host = loopback_host(&args.get_str("host", "127.0.0.1"))?;
    let port: u16 = args.get_opt("port")?.ok_or("--port is required")?;
    let size: usize = args.get("size", 1024)?;
    let conns: usize = args.get("conns", 1)?;
    let warmup: f64 = args.get("warmup", 0.5)?;
    let duration: f64 = args.get("duration", 2.0)?;
    let server_pid: Option<u32> = args.get_opt("server-pid")?;
    let use_tls = args.flag("tls")?;
    let tls_cert: Option<String> = args.get_opt("tls-cert")?;
    if tls_cert.is_some() && !use_tls {
        return Err("--tls-cert needs --tls".to_string());
    }
    if use_tls && matches!(mode, Mode::Churn | Mode::Udp) {
        return Err("--tls is supported with --mode echo and http only".to_string());
    }
    // Read the certificate before the clock starts.
    let connector = if use_tls {
        let config = tls::client_config(tls_cert.as_deref().map(Path::new))?;
        Some(TlsConnector::from(config))
    } else {
        None
    };
    if size == 0 || conns == 0 {
        return Err("--size and --conns must be positive".to_string());
    }
    // Bounded runs only: also rejects NaN and infinities.
    if !(0.0..=3600.0).contains(&duration) || duration == 0.0 {
        return Err("--duration must be in (0, 3600] seconds".to_string());
    }
    if !(0.0..=600.0).contains(&warmup) {
        return Err("--warmup must be in [0, 600] seconds".to_string());
    }
    if let Some(cpu) = args.get_opt::<usize>("cpu")? {
        pin_to_cpu(cpu)?;
    }

    // Watchdog: whatever happens, the process ends shortly after the window.
    let limit = Duration::from_secs_f64(warmup + duration) + GRACE * 2;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("loadclient: hard deadline reached, exiting");
        std::process::exit(3);
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build runtime: {e}"))?;
    let report = rt.block_on(async {
        let start = Instant::now() + Duration::from_secs_f64(warmup);
        let end = start + Duration::from_secs_f64(duration);
        let plan = Plan {
            addr: SocketAddr::new(host, port),
            mode,
            size,
            start,
            end,
            hard: end + GRACE,
            tls: connector,
        };
        run(plan, conns, server_pid).await
    });
    println!("{report}");
    Ok(())
}
