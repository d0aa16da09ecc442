//! "Ceiling" servers: the same echo and HTTP services as the Python servers,
//! written in plain Rust on a single-threaded tokio runtime. They show the
//! limit that this machine and load client can reach.
//!
//! With `--tls --cert PEM --key PEM` every connection is TLS 1.3 (rustls,
//! ring provider), as the Python `tls` and `https` servers.
//!
//! Prints `READY port=P pid=N` once listening; exits after `--max-seconds`.

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use loadclient::{find_header_end, http_response, loopback_host, pin_to_cpu, tls, Args};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // The flush is a no-op for TCP; over TLS it sends what is buffered.
        if stream.write_all(&buf[..n]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

async fn http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, response: Rc<Vec<u8>>) {
    let mut pending: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 16384];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        // GET requests only: no body follows the header block.
        while let Some(end) = find_header_end(&pending) {
            pending.drain(..end + 4);
            out.extend_from_slice(&response);
        }
        if pending.len() > 65536 {
            return;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// One connection: the TLS handshake first when `acceptor` is set.
async fn handle(
    stream: TcpStream,
    is_http: bool,
    acceptor: Option<TlsAcceptor>,
    response: Rc<Vec<u8>>,
) {
    match acceptor {
        None if is_http => http(stream, response).await,
        None => echo(stream).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls) if is_http => http(tls, response).await,
            Ok(tls) => echo(tls).await,
            Err(e) => eprintln!("ceiling: TLS handshake failed: {e}"),
        },
    }
}

async fn serve(listener: TcpListener, is_http: bool, acceptor: Option<TlsAcceptor>) {
    let response = Rc::new(http_response());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(handle(
                    stream,
                    is_http,
                    acceptor.clone(),
                    response.clone(),
                ));
            }
            Err(e) => {
                eprintln!("ceiling: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("ceiling: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let args = Args::from_env()?;
    let is_http = match args.get_str("mode", "echo").as_str() {
        "echo" => false,
        "http" => true,
        other => return Err(format!("unknown --mode {other:?} (echo|http)")),
    };
    let host = loopback_host(&args.get_str("host", "127.0.0.1"))?;
    let port: u16 = args.get("port", 0)?;
    let max_seconds: f64 = args.get("max-seconds", 600.0)?;
    if !(1.0..=86400.0).contains(&max_seconds) {
        return Err("--max-seconds must be in [1, 86400]".to_string());
    }
    let acceptor = if args.flag("tls")? {
        let cert: String = args.get_opt("cert")?.ok_or("--tls needs --cert PEM")?;
        let key: String = args.get_opt("key")?.ok_or("--tls needs --key PEM")?;
        Some(TlsAcceptor::from(tls::server_config(
            Path::new(&cert),
            Path::new(&key),
        )?))
    } else {
        None
    };
    if let Some(cpu) = args.get_opt::<usize>("cpu")? {
        pin_to_cpu(cpu)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind((host, port))
            .await
            .map_err(|e| format!("bind failed: {e}"))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("local_addr failed: {e}"))?;
        println!("READY port={} pid={}", bound.port(), std::process::id());
        // A closed stdout (parent gone) is not a reason to stop serving.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let limit = Duration::from_secs_f64(max_seconds);
        let _ = tokio::time::timeout(limit, serve(listener, is_http, acceptor)).await;
        Ok::<(), String>(())
    })
}
