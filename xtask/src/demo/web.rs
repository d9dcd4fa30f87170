//! A minimal HTTP/1.1 server for the demo: plays the websites the sample fetches and the web app
//! behind CNAF (`cargo xtask demo-web ADDR NAME` runs it as a process the defender supervises).

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Serves forever on `addr`, answering every request with a small page naming `name`.
pub fn serve(addr: SocketAddr, name: &str) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    for conn in listener.incoming().map_while(Result::ok) {
        let name = name.to_string();
        std::thread::spawn(move || {
            let _ = handle(conn, &name);
        });
    }
    Ok(())
}

/// Starts [`serve`] on a background thread after binding, so callers know it is listening.
pub fn start(addr: SocketAddr, name: &str) -> Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let name = name.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let name = name.clone();
            std::thread::spawn(move || {
                let _ = handle(conn, &name);
            });
        }
    });
    Ok(())
}

fn handle(conn: TcpStream, name: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                } else if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        reader.read_exact(&mut body)?;
        let page = format!(
            "<html><body><h1>{name}</h1><p>{}</p></body></html>\n",
            request_line.trim()
        );
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        )?;
        if close {
            return Ok(());
        }
    }
}
