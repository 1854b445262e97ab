//! The CLI's end of the control socket: one request per connection, the answer copied to the
//! caller's stdout and stderr as it arrives.

use super::protocol::{End, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Longest wait for the next line of an answer (a reload loads plugins; an export streams).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to the control socket {path}: {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("the control socket {path} refuses this user (it serves only the daemon's own user)")]
    Denied { path: PathBuf },
    #[error("the daemon's answer on {path} broke off: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the daemon's answer on {path} is not understood: {detail}")]
    Protocol { path: PathBuf, detail: String },
}

pub struct Client {
    path: PathBuf,
    stream: UnixStream,
}

impl Client {
    /// Connects to the daemon on `path`; `None` when no daemon listens there (no socket file,
    /// or one a crash left behind).
    pub fn connect(path: &Path) -> Result<Option<Client>, ClientError> {
        use std::io::ErrorKind::{ConnectionRefused, NotFound, PermissionDenied};
        match UnixStream::connect(path) {
            Ok(stream) => Ok(Some(Client { path: path.to_path_buf(), stream })),
            Err(e) if matches!(e.kind(), NotFound | ConnectionRefused) => Ok(None),
            Err(e) if e.kind() == PermissionDenied => Err(ClientError::Denied { path: path.to_path_buf() }),
            Err(source) => Err(ClientError::Connect { path: path.to_path_buf(), source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `req`, writes the answer's output to `out` and its notes to `err`, and returns
    /// how the command ended.
    pub fn call(self, req: &Request, out: &mut dyn Write, err: &mut dyn Write) -> Result<End, ClientError> {
        let path = self.path;
        let io = |source| ClientError::Io { path: path.clone(), source };
        let mut stream = self.stream;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
        let mut line = serde_json::to_vec(req)
            .map_err(|e| ClientError::Protocol { path: path.clone(), detail: e.to_string() })?;
        line.push(b'\n');
        if let Err(e) = stream.write_all(&line) {
            // The daemon may answer before it reads the request (it refuses another user at
            // once) and close: the answer is still there to read, and says more than EPIPE.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(io(e));
            }
        }
        for l in BufReader::new(stream).lines() {
            let l = l.map_err(io)?;
            let reply: Reply = serde_json::from_str(&l)
                .map_err(|e| ClientError::Protocol { path: path.clone(), detail: e.to_string() })?;
            match reply {
                Reply::Out(text) => out.write_all(text.as_bytes()).map_err(io)?,
                Reply::Note(text) => writeln!(err, "{text}").map_err(io)?,
                Reply::End(end) => {
                    out.flush().map_err(io)?;
                    return Ok(end);
                }
            }
        }
        Err(ClientError::Io {
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ),
        })
    }
}
