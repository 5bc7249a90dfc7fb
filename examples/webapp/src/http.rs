//! A deliberately small HTTP/1.1 server: every GET gets the same page.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body skipped to keep a connection alive.
pub const MAX_SKIPPED_BODY: usize = 64 * 1024;
/// Idle time after which a connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server says.
#[derive(Debug, Clone)]
pub struct Site {
    pub instance_name: String,
    pub port: u16,
}

impl Site {
    pub fn page(&self) -> String {
        let name = html_escape(&self.instance_name);
        format!(
            "<!DOCTYPE html>\n<html>\n<head><title>Simple test webapp</title></head>\n\
             <body>\n<h1>Simple test webapp</h1>\n<p>{name} listening on port: {}</p>\n</body>\n</html>\n",
            self.port
        )
    }
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.header("Connection")
            .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    }

    /// Whether the client wants the connection kept open afterwards.
    pub fn keep_alive(&self) -> bool {
        if self.minor == 0 {
            self.connection_has("keep-alive")
        } else {
            !self.connection_has("close")
        }
    }
}

/// Finds the end of a request head: the index just past the blank line.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a request head (without requiring the trailing blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if !is_token(method) {
        return Err("malformed method");
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err("malformed request target");
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err("unsupported HTTP version"),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or("malformed header line")?;
        if !is_token(name) {
            return Err("malformed header name");
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        minor,
        headers,
    })
}

pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub extra_headers: Vec<(&'static str, &'static str)>,
    pub body: String,
    pub send_body: bool,
    pub close: bool,
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n",
            self.status,
            self.reason,
            self.body.len()
        );
        for (n, v) in &self.extra_headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if self.close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if self.send_body {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn error_page(status: u16, reason: &'static str) -> String {
    format!("<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head><body>{status} {reason}</body></html>\n")
}

/// The answer to a well-formed request; `close` is the connection decision
/// made so far.
pub fn respond(site: &Site, req: &Request, close: bool) -> Response {
    match req.method.as_str() {
        "GET" | "HEAD" => Response {
            status: 200,
            reason: "OK",
            extra_headers: Vec::new(),
            body: site.page(),
            send_body: req.method == "GET",
            close,
        },
        _ => Response {
            status: 405,
            reason: "Method Not Allowed",
            extra_headers: vec![("Allow", "GET, HEAD")],
            body: error_page(405, "Method Not Allowed"),
            send_body: true,
            close,
        },
    }
}

fn bad_request() -> Response {
    Response {
        status: 400,
        reason: "Bad Request",
        extra_headers: Vec::new(),
        body: error_page(400, "Bad Request"),
        send_body: true,
        close: true,
    }
}

/// Serves one connection until the client or an error closes it. Never
/// panics on client input.
pub fn serve_connection(site: &Site, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // Read a complete head.
        let end = loop {
            // Tolerate empty lines before a request (RFC 9112 §2.2).
            while buf.first() == Some(&b'\n') || buf.starts_with(b"\r\n") {
                let skip = if buf[0] == b'\n' { 1 } else { 2 };
                buf.drain(..skip);
            }
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                let _ = stream.write_all(&bad_request().to_bytes());
                return;
            }
            match stream.read(&mut chunk) {
                Ok(0) => {
                    if !buf.iter().all(|b| b.is_ascii_whitespace()) {
                        let _ = stream.write_all(&bad_request().to_bytes());
                    }
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        };
        let req = match parse_head(&buf[..end]) {
            Ok(r) => r,
            Err(_) => {
                let _ = stream.write_all(&bad_request().to_bytes());
                return;
            }
        };
        buf.drain(..end);

        let mut close = !req.keep_alive();
        // Request bodies are not used; skip small ones, otherwise close.
        if req.header("Transfer-Encoding").is_some() {
            close = true;
        } else if let Some(cl) = req.header("Content-Length") {
            match cl.parse::<usize>() {
                Ok(n) if n <= MAX_SKIPPED_BODY => {
                    while buf.len() < n {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    buf.drain(..n);
                }
                Ok(_) => close = true,
                Err(_) => {
                    let _ = stream.write_all(&bad_request().to_bytes());
                    return;
                }
            }
        }
        let resp = respond(site, &req, close);
        if stream.write_all(&resp.to_bytes()).is_err() || close {
            let _ = stream.shutdown(std::net::Shutdown::Write);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let r = parse_head(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/x");
        assert_eq!(r.header("host"), Some("a"));
        assert!(!r.keep_alive());
        let r = parse_head(b"GET / HTTP/1.0\n\n").unwrap();
        assert!(!r.keep_alive());
        let r = parse_head(b"GET / HTTP/1.0\nConnection: keep-alive\n\n").unwrap();
        assert!(r.keep_alive());
        assert!(parse_head(b"GET / HTTP/1.1\r\n\r\n").unwrap().keep_alive());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn head_end_variants() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn page_escapes_the_instance_name() {
        let site = Site {
            instance_name: "<b>&".into(),
            port: 80,
        };
        let page = site.page();
        assert!(page.contains("Simple test webapp"));
        assert!(page.contains("&lt;b&gt;&amp; listening on port: 80"));
    }

    #[test]
    fn responses() {
        let site = Site {
            instance_name: "w".into(),
            port: 1,
        };
        let get = parse_head(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let r = respond(&site, &get, false).to_bytes();
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Type: text/html"));
        assert!(s.ends_with(&site.page()));
        let post = parse_head(b"POST / HTTP/1.1\r\n\r\n").unwrap();
        let s = String::from_utf8(respond(&site, &post, true).to_bytes()).unwrap();
        assert!(s.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(s.contains("Connection: close"));
        let head = parse_head(b"HEAD / HTTP/1.1\r\n\r\n").unwrap();
        let s = String::from_utf8(respond(&site, &head, false).to_bytes()).unwrap();
        assert!(s.ends_with("\r\n\r\n"));
    }
}
