//! The daemon's control socket, `InstanceId::socket` (mode 0600): both ends of the one channel
//! that `dnssink log`, `dnssink top` and `dnssink reload` talk to a running daemon through.
//! (SIGHUP reloads too, for systemd; `query` needs no daemon: it reads the live rule table.)
//!
//! A client sends one JSON line, a [`Request`]:
//! - `{"log": {"follow": bool}}`: the daemon answers with the entries of its window as JSON
//!   lines and, with `follow`, every new entry after them until the client goes away;
//! - `"reload"`: the daemon reloads and answers with one JSON line, `{"ok": summary}` or
//!   `{"failed": why}` (the old rules stay).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    rc::Rc,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _},
    net::{UnixListener, UnixStream, unix::OwnedWriteHalf},
    sync::{broadcast, mpsc, oneshot},
};

use super::Shared;
use crate::qlog::Entry;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Request {
    Log { follow: bool },
    Reload,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reloaded {
    Ok(String),
    Failed(String),
}

/// A reload asked for on a socket, for the daemon's loop, which owns the instances: its
/// index, and where the result goes.
pub struct Reload {
    pub instance: usize,
    pub reply: oneshot::Sender<std::result::Result<String, String>>,
}

/// Serves the socket of `shared` (instance `index`) until the task is dropped.
pub fn listen(
    shared: Rc<Shared>,
    index: usize,
    reloads: mpsc::UnboundedSender<Reload>,
) -> Result<()> {
    let path = shared.id.socket();
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tokio::task::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let reloads = reloads.clone();
                    tokio::task::spawn_local(async move {
                        if let Err(e) = serve(stream, shared, index, reloads).await {
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

async fn serve(
    stream: UnixStream,
    shared: Rc<Shared>,
    instance: usize,
    reloads: mpsc::UnboundedSender<Reload>,
) -> Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(r).read_line(&mut line).await?;
    match serde_json::from_str(&line).context("bad request")? {
        Request::Log { follow } => send_log(&mut w, &shared, follow).await,
        Request::Reload => {
            let (reply, result) = oneshot::channel();
            reloads
                .send(Reload { instance, reply })
                .context("the daemon is stopping")?;
            let answer = match result.await.context("the daemon is stopping")? {
                Ok(summary) => Reloaded::Ok(summary),
                Err(why) => Reloaded::Failed(why),
            };
            let mut out = serde_json::to_vec(&answer)?;
            out.push(b'\n');
            w.write_all(&out).await?;
            Ok(w.shutdown().await?)
        }
    }
}

async fn send_log(w: &mut OwnedWriteHalf, shared: &Shared, follow: bool) -> Result<()> {
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
    if !follow {
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

fn connect(path: &Path, request: &Request) -> Result<std::os::unix::net::UnixStream> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connecting to {} (is the daemon running?)", path.display()))?;
    let mut req = serde_json::to_vec(request)?;
    req.push(b'\n');
    s.write_all(&req)?;
    Ok(s)
}

/// Reads the log of the daemon whose socket is `path`: calls `each` for every entry, and
/// with `follow` keeps reading until the daemon goes away or `each` returns false.
pub fn read_log(path: &Path, follow: bool, mut each: impl FnMut(Entry) -> bool) -> Result<()> {
    let s = connect(path, &Request::Log { follow })?;
    for line in BufReader::new(s).lines() {
        let line = line.context("reading the log")?;
        let e: Entry = serde_json::from_str(&line).context("a bad log line")?;
        if !each(e) {
            break;
        }
    }
    Ok(())
}

/// Asks the daemon whose socket is `path` to reload, and waits up to `timeout` for the
/// result: its summary, or why it failed.
pub fn reload(path: &Path, timeout: Duration) -> Result<String> {
    let s = connect(path, &Request::Reload)?;
    s.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .with_context(|| format!("no reload result within {timeout:?}"))?;
    match serde_json::from_str(&line).context("a bad reload answer")? {
        Reloaded::Ok(summary) => Ok(summary),
        Reloaded::Failed(why) => bail!("{why}"),
    }
}
