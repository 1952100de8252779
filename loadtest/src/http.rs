//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`: one request
//! per connection (`Connection: close`), enough for WHIP/WHEP POST and DELETE
//! and `GET /metrics`.
//!
//! Invariants: only loopback servers are accepted ([`ServerUrl::parse`]
//! refuses anything else, so the tool never sends load off the machine);
//! every request is bounded by [`TIMEOUT`] for connect, write and read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connect, write and read timeout of every request.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Responses larger than this are an error (an SDP answer is a few KB).
const MAX_RESPONSE: usize = 4 << 20;

/// `http://host:port` of a loopback server.
#[derive(Clone, Debug)]
pub struct ServerUrl {
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub host: String,
}

impl ServerUrl {
    pub fn parse(url: &str) -> Result<ServerUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| {
                format!("{url}: not a loopback address (the tool only loads this machine)")
            })?;
        Ok(ServerUrl {
            addr,
            host: authority.to_owned(),
        })
    }
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request and reads the whole response.
pub fn request(
    server: &ServerUrl,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    let mut stream = TcpStream::connect_timeout(&server.addr, TIMEOUT)
        .map_err(|e| format!("{method} {path}: connect {}: {e}", server.addr))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.host,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("{method} {path}: write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: read: {e}"))?;
    if raw.len() > MAX_RESPONSE {
        return Err(format!(
            "{method} {path}: response larger than {MAX_RESPONSE} bytes"
        ));
    }
    parse_response(&raw).map_err(|e| format!("{method} {path}: {e}"))
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = &raw[split + 4..];
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        return Ok(Response {
            status,
            body: dechunk(body)?,
            headers,
        });
    }
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body = &body[..len.min(body.len())];
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
        headers,
    })
}

fn dechunk(mut data: &[u8]) -> Result<String, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_with_content_length_keeps_only_its_body() {
        let raw =
            b"HTTP/1.1 201 Created\r\nLocation: /whep/live/1\r\nContent-Length: 3\r\n\r\nabcdef";
        let r = parse_response(raw).unwrap();
        assert_eq!(
            (r.status, r.header("location"), r.body.as_str()),
            (201, Some("/whep/live/1"), "abc")
        );
    }

    #[test]
    fn a_chunked_response_is_reassembled() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap().body, "abcde");
    }

    #[test]
    fn servers_off_this_machine_are_refused() {
        assert!(ServerUrl::parse("http://192.0.2.1:8080").is_err());
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:8080")
                .unwrap()
                .addr
                .port(),
            8080
        );
    }
}
