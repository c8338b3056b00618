//! The daemon's control socket, `/run/dnssink/IFACE.NETNS.sock` (mode 0600): `dnssink log`
//! and `dnssink top` read the query log through it.
//!
//! A client sends one JSON line, `{"follow": bool}`; the daemon answers with the entries of
//! its window as JSON lines and, with `follow`, every new entry after them until the client
//! goes away.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    rc::Rc,
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream},
    sync::broadcast,
};

use crate::{daemon::Shared, qlog::Entry};

#[derive(Serialize, Deserialize)]
struct Request {
    follow: bool,
}

/// Serves the socket at `path` until the task is dropped.
pub fn listen(path: &Path, shared: Rc<Shared>) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tokio::task::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    tokio::task::spawn_local(async move {
                        if let Err(e) = serve(stream, shared).await {
                            tracing::debug!("control client: {e:#}");
                        }
                    });
                }
                Err(e) => tracing::warn!("control socket: {e}"),
            }
        }
    });
    Ok(())
}

async fn serve(stream: UnixStream, shared: Rc<Shared>) -> Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(r).read_line(&mut line).await?;
    let req: Request = serde_json::from_str(&line).context("bad request")?;
    // Subscribed before the window is read: nothing falls between the two.
    let mut rx = shared.log.subscribe();
    let backlog: Vec<u8> = {
        let window = shared.window.borrow();
        let mut out = Vec::new();
        for e in window.iter() {
            serde_json::to_writer(&mut out, e)?;
            out.push(b'\n');
        }
        out
    };
    w.write_all(&backlog).await?;
    if !req.follow {
        return Ok(w.shutdown().await?);
    }
    loop {
        match rx.recv().await {
            Ok(e) => {
                let mut out = serde_json::to_vec(&e)?;
                out.push(b'\n');
                w.write_all(&out).await?;
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!("a log follower fell {n} entries behind");
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Reads the log of the daemon whose socket is `path`: calls `each` for every entry, and
/// with `follow` keeps reading until the daemon goes away or `each` returns false.
pub fn read(path: &Path, follow: bool, mut each: impl FnMut(Entry) -> bool) -> Result<()> {
    let mut s = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} (the query log needs the daemon running)",
            path.display()
        )
    })?;
    let mut req = serde_json::to_vec(&Request { follow })?;
    req.push(b'\n');
    s.write_all(&req)?;
    for line in BufReader::new(s).lines() {
        let line = line.context("reading the log")?;
        let e: Entry = serde_json::from_str(&line).context("a bad log line")?;
        if !each(e) {
            break;
        }
    }
    Ok(())
}
