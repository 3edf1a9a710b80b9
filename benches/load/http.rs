//! A tiny blocking HTTP/1.1 client over one keep-alive TcpStream: enough for SCEP (Content-Length
//! or chunked bodies, `Connection: close` honoured by reconnecting).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `http://host:port/path` split into the connect address, Host header value and path.
#[derive(Debug, Clone)]
pub struct Url {
    /// host:port to connect to.
    pub addr: String,
    /// Host header.
    pub host: String,
    /// Path without query.
    pub path: String,
}

impl Url {
    /// Parses a plain-HTTP URL (no TLS: the tool measures the CA, not a TLS terminator).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("only http:// URLs are supported")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let path = path.split('?').next().unwrap_or("/").to_owned();
        Ok(Self {
            addr,
            host: host.to_owned(),
            path,
        })
    }

    /// A complete GET request for `path?query`.
    pub fn get(&self, query: &str) -> Vec<u8> {
        format!(
            "GET {}?{query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: scep-load\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }

    /// A complete POST request for `path?query` with `body`.
    pub fn post(&self, query: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "POST {}?{query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: scep-load\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }
}

/// One response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Content-Type (lowercase), empty when absent.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

/// A keep-alive connection.
pub struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    /// A connection to `addr`, opened now.
    pub fn open(addr: &str) -> io::Result<Self> {
        let mut c = Self {
            addr: addr.to_owned(),
            stream: None,
        };
        c.connect()?;
        Ok(c)
    }

    fn connect(&mut self) -> io::Result<()> {
        let s = TcpStream::connect(&self.addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.set_write_timeout(Some(Duration::from_secs(60)))?;
        self.stream = Some(BufReader::with_capacity(16 * 1024, s));
        Ok(())
    }

    /// Sends a pre-built request and reads the reply; reconnects first if the server closed.
    pub fn send(&mut self, request: &[u8]) -> io::Result<Reply> {
        if self.stream.is_none() {
            self.connect()?;
        }
        let result = self.exchange(request);
        match &result {
            Ok(r) if !r.keep_alive => self.stream = None,
            Err(_) => self.stream = None,
            Ok(_) => {}
        }
        result.map(|r| r.reply)
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<Exchanged> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("not connected"))?;
        s.get_mut().write_all(request)?;
        read_reply(s)
    }
}

struct Exchanged {
    reply: Reply,
    keep_alive: bool,
}

fn bad(s: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, s.to_owned())
}

fn read_reply(s: &mut BufReader<TcpStream>) -> io::Result<Exchanged> {
    let mut line = String::new();
    if s.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let http10 = line.starts_with("HTTP/1.0");
    let (mut length, mut chunked, mut close, mut content_type) =
        (None, false, http10, String::new());
    loop {
        line.clear();
        if s.read_line(&mut line)? == 0 {
            return Err(bad("eof in headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.contains("chunked"),
            "connection" => close = v.contains("close"),
            "content-type" => content_type = v,
            _ => {}
        }
    }
    let body = if chunked {
        read_chunked(s)?
    } else if let Some(n) = length {
        let mut b = vec![0u8; n];
        s.read_exact(&mut b)?;
        b
    } else {
        close = true;
        let mut b = Vec::new();
        s.read_to_end(&mut b)?;
        b
    };
    Ok(Exchanged {
        reply: Reply {
            status,
            content_type,
            body,
        },
        keep_alive: !close,
    })
}

fn read_chunked(s: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        s.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers until the empty line.
            loop {
                line.clear();
                if s.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        s.read_exact(&mut body[start..])?;
        line.clear();
        s.read_line(&mut line)?;
    }
}

/// Percent-encodes base64 for a query string (RFC 8894 §4.1: '+', '/' and '=' escaped).
pub fn query_escape(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 8);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}
