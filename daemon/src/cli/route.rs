//! Where a command goes: to the running daemon through its control socket when one answers,
//! else to the state opened here. A state locked by a process that does not answer gets one
//! plain sentence, not sled's error.

use super::context::Context;
use crate::config::Settings;
use crate::control::{self, Request};
use crate::state::Store;
use std::path::Path;
use std::time::Duration;

pub enum Target {
    /// A daemon holds the state and answers on its socket.
    Daemon(control::Client),
    /// No daemon: the state is opened here.
    Local(Box<Context>),
}

/// How long a locked state is retried for an answering socket: a daemon opens the state a
/// moment before its socket listens, and removes the socket a moment before it closes.
const SETTLE: Duration = Duration::from_secs(3);

/// Connects to the daemon of `config`, or opens its state when no daemon runs.
pub fn target(config: &Path) -> anyhow::Result<Target> {
    let settings = Settings::load(config)?;
    let socket = settings.control_socket.clone();
    let t0 = std::time::Instant::now();
    loop {
        if let Some(c) = control::Client::connect(&socket)? {
            return Ok(Target::Daemon(c));
        }
        match Store::open(&settings.state_dir, settings.cache_bytes) {
            Ok(store) => return Ok(Target::Local(Box::new(Context::new(settings, store)?))),
            Err(e) if e.is_locked() && t0.elapsed() < SETTLE => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) if e.is_locked() => {
                let pid = control::lock_holder(&settings.state_dir)
                    .map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
                anyhow::bail!(
                    "the state in {} is held by another shopsync process ({pid}), and its control socket {} does not answer",
                    settings.state_dir.display(),
                    socket.display()
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `req` to the daemon, copies its answer to stdout and stderr, and returns the exit
/// status it asks for (an error it reports becomes this command's error).
pub fn ask(client: control::Client, req: &Request) -> anyhow::Result<bool> {
    let path = client.path().to_path_buf();
    let end = client.call(req, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
    match end.error {
        Some(e) => anyhow::bail!("{e} (answered by the daemon on {})", path.display()),
        None => Ok(end.ok),
    }
}
