//! The daemon's end of the control socket.
//!
//! The socket is the daemon's whole authority over its state, so it is guarded twice: the
//! file is mode 0600 (set before the first accept), and every peer's uid, read from the
//! kernel (SO_PEERCRED), must be the daemon's own, root included: a root client is refused
//! by a daemon that runs as its own user, so a mistyped `sudo` cannot act as it by accident.

use super::protocol::{End, Reply, Request};
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// A request line longer than this is not one of ours.
const MAX_REQUEST: u64 = 64 * 1024;
/// A client that connects and says nothing is dropped after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum ServerError {
    #[error(
        "another shopsync answers on the control socket {0}; give this one its own daemon.control_socket"
    )]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it with the control socket")]
    NotASocket(PathBuf),
    #[error("cannot set up the control socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What the daemon does for each request. The answer goes out through `out` as it is made;
/// the returned [`End`] is the last line.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, req: Request, out: Replies) -> Pin<Box<dyn Future<Output = End> + Send>>;
}

/// Where a handler sends its answer's lines.
#[derive(Clone)]
pub struct Replies(mpsc::Sender<Reply>);

impl Replies {
    /// Sends text for the client's stdout; false once the client has gone.
    pub async fn out(&self, text: impl Into<String>) -> bool {
        self.0.send(Reply::Out(text.into())).await.is_ok()
    }

    /// Sends a line for the client's stderr; false once the client has gone.
    pub async fn note(&self, line: impl Into<String>) -> bool {
        self.0.send(Reply::Note(line.into())).await.is_ok()
    }

    /// A blocking writer for code that prints to an [`std::io::Write`] (run it in
    /// `spawn_blocking`: it waits for the socket, which must not block the runtime).
    pub fn writer(&self) -> ReplyWriter {
        ReplyWriter { tx: self.0.clone(), buf: Vec::new() }
    }
}

/// An [`std::io::Write`] whose bytes travel as `out` lines. Only whole lines are sent (cut at
/// the last newline), so a UTF-8 character is never split across two of them.
pub struct ReplyWriter {
    tx: mpsc::Sender<Reply>,
    buf: Vec<u8>,
}

/// Bytes gathered before a chunk of whole lines goes out.
const CHUNK: usize = 32 * 1024;

impl ReplyWriter {
    fn send_lines(&mut self) -> std::io::Result<()> {
        let Some(end) = self.buf.iter().rposition(|&b| b == b'\n') else { return Ok(()) };
        let rest = self.buf.split_off(end + 1);
        let lines = std::mem::replace(&mut self.buf, rest);
        let text = String::from_utf8_lossy(&lines).into_owned();
        self.tx
            .blocking_send(Reply::Out(text))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client has gone"))
    }
}

impl Write for ReplyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_lines()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_lines()
    }
}

impl Drop for ReplyWriter {
    fn drop(&mut self) {
        let _ = self.send_lines();
        if !self.buf.is_empty() {
            let rest = String::from_utf8_lossy(&self.buf).into_owned();
            let _ = self.tx.blocking_send(Reply::Out(rest));
        }
    }
}

/// The listening socket; the file is removed when this is dropped.
pub struct Server {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Io { path: path.to_path_buf(), source }
}

/// The daemon's effective uid.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

impl Server {
    /// Binds the socket at `path` (removing a stale one a crash left behind) and serves
    /// `handler` on it until dropped.
    pub fn start(path: &Path, handler: Arc<dyn Handler>) -> Result<Server, ServerError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ServerError::InUse(path.to_path_buf()));
                }
                std::fs::remove_file(path).map_err(io_err(path))?;
            }
            Ok(_) => return Err(ServerError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let listener = UnixListener::bind(path).map_err(io_err(path))?;
        // Before the first accept; a peer that connected in between is still refused by uid.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
        let uid = own_uid();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_one(stream, uid, handler.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tracing::info!(path = %path.display(), "control socket ready");
        Ok(Server { path: path.to_path_buf(), task: Some(task) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn send(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn serve_one(mut stream: UnixStream, uid: u32, handler: Arc<dyn Handler>) {
    let peer = stream.peer_cred().map(|c| c.uid());
    if peer.as_ref().ok() != Some(&uid) {
        tracing::warn!(peer_uid = ?peer.as_ref().ok(), "control socket: a client of another user was refused");
        let refusal = End::error(format!("the control socket serves only uid {uid}, the daemon's user"));
        let _ = send(&mut stream, &Reply::End(refusal)).await;
        return;
    }
    let mut line = String::new();
    let read = {
        let mut reader = BufReader::new((&mut stream).take(MAX_REQUEST));
        tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await
    };
    let req = match read {
        Ok(Ok(n)) if n > 0 => serde_json::from_str::<Request>(line.trim_end()),
        _ => return,
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            let _ =
                send(&mut stream, &Reply::End(End::error(format!("not a request this daemon knows: {e}"))))
                    .await;
            return;
        }
    };
    tracing::debug!(?req, "control request");
    let (tx, mut rx) = mpsc::channel(64);
    let job = tokio::spawn(handler.handle(req, Replies(tx)));
    while let Some(r) = rx.recv().await {
        if send(&mut stream, &r).await.is_err() {
            // The client went away: dropping `rx` makes the handler's next line fail.
            return;
        }
    }
    let end = job.await.unwrap_or_else(|_| End::error("the command failed inside the daemon (see its log)"));
    let _ = send(&mut stream, &Reply::End(end)).await;
    let _ = stream.shutdown().await;
}
