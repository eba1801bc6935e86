//! A tiny HTTP/1.1 server on 127.0.0.1 for download tests without the internet: one route,
//! one canned reply (a body, a cut-off body, or 404), and a count of the requests it got.
//!
//! Shared by the test crates that download (include it with
//! `#[path = "<relative path to>/alexnet-common/tests/support/http_server.rs"] mod http_server;`):
//!
//! ```ignore
//! let server = Server::start("/file.tgz", Reply::Body(bytes));
//! let url = server.url("/file.tgz");   // http://127.0.0.1:PORT/file.tgz
//! server.base();                       // http://127.0.0.1:PORT, for $ALEXNET_BURN_MIRROR
//! server.requests();                   // requests answered so far
//! closed_url("/x.tgz");                // a URL nothing listens on (offline)
//! ```

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the test server answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 200 announcing `claimed` bytes, sending `body`, then closing.
    Truncated { body: Vec<u8>, claimed: usize },
    /// 404.
    NotFound,
}

/// A one-route HTTP/1.1 server: every request for `path` gets `reply`, others 404. It runs
/// on a background thread until the test process ends.
pub struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    /// Starts serving `reply` at `path` (e.g. `/file.tgz`) on a free port.
    pub fn start(path: &str, reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let path = path.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = answer(stream, &path, &reply);
            }
        });
        Self { base, requests }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A URL on 127.0.0.1 that nothing listens on (a port that was just freed): connecting is
/// refused, as offline.
pub fn closed_url(path: &str) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}{path}")
}

fn answer(stream: TcpStream, path: &str, reply: &Reply) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let requested = request_line.split_whitespace().nth(1).unwrap_or("");
    let reply = if requested == path {
        reply.clone()
    } else {
        Reply::NotFound
    };
    let (status, body, length) = match reply {
        Reply::Body(body) => ("200 OK", body.clone(), body.len()),
        Reply::Truncated { body, claimed } => ("200 OK", body, claimed),
        Reply::NotFound => ("404 Not Found", b"not found".to_vec(), 9),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(&body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
