//! Helpers shared by the load client and the ceiling servers.

use std::collections::HashMap;
use std::net::IpAddr;

pub mod tls;

/// The fixed HTTP response body served by every HTTP server in the suite.
pub const HTTP_BODY: &[u8] = b"Hello, World!";

/// Build the full HTTP/1.1 keep-alive response (headers + body).
pub fn http_response() -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        HTTP_BODY.len()
    )
    .into_bytes();
    out.extend_from_slice(HTTP_BODY);
    out
}

/// Tiny `--key value` command-line parser (flags without a value are stored as "1").
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    pub fn from_env() -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(arg) = it.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?
                .to_string();
            if let Some((k, v)) = key.split_once('=') {
                values.insert(k.to_string(), v.to_string());
                continue;
            }
            let value = match it.peek() {
                Some(next) if !next.starts_with("--") => it.next().unwrap_or_default(),
                _ => "1".to_string(),
            };
            values.insert(key, value);
        }
        Ok(Args { values })
    }

    pub fn get_str(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .map_err(|_| format!("invalid value for --{key}: {v:?}")),
        }
    }

    /// A switch: absent is false; `--key` alone, `--key 1` or `--key true` is true.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        match self.values.get(key).map(String::as_str) {
            None | Some("0" | "false") => Ok(false),
            Some("1" | "true") => Ok(true),
            Some(v) => Err(format!("invalid value for --{key}: {v:?} (a switch)")),
        }
    }

    pub fn get_opt<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| format!("invalid value for --{key}: {v:?}")),
        }
    }
}

/// Parse a host and insist that it is a loopback address: the suite never
/// sends traffic anywhere else.
pub fn loopback_host(host: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("--host must be a literal IP address, got {host:?}"))?;
    if !ip.is_loopback() {
        return Err(format!("refusing non-loopback address {ip}"));
    }
    Ok(ip)
}

/// Pin the calling thread (and threads it creates later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it and
    // sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes from it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity(cpu {cpu}) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Clock ticks per second used by /proc/PID/stat.
pub fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

/// utime + stime (clock ticks) of a process, summed over all its threads.
/// `pid` of None reads /proc/self/stat.
pub fn process_cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; fields after it are
    // whitespace-separated. After ")" the first field is field 3 (state), so
    // utime (field 14) and stime (field 15) are at offsets 11 and 12.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Position of the first "\r\n\r\n" in `buf`, if any.
pub fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Content-Length of an HTTP header block (0 if absent, None if malformed).
pub fn content_length(headers: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(headers).ok()?;
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                return value.trim().parse().ok();
            }
        }
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length() {
        let resp = http_response();
        let end = find_header_end(&resp).expect("header end");
        assert_eq!(content_length(&resp[..end]), Some(HTTP_BODY.len()));
        assert_eq!(resp.len(), end + 4 + HTTP_BODY.len());
    }

    #[test]
    fn rejects_non_loopback() {
        assert!(loopback_host("127.0.0.1").is_ok());
        assert!(loopback_host("::1").is_ok());
        assert!(loopback_host("10.0.0.1").is_err());
    }

    #[test]
    fn reads_own_cpu() {
        assert!(process_cpu_ticks(None).is_some());
    }
}
