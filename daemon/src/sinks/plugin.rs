//! Loading sink plugins and calling them.
//!
//! A library is loaded only from `plugin_dir`, only if neither it nor the folder is group- or
//! world-writable, and only if its table speaks our ABI version with every function set. It
//! is never unloaded while the daemon runs (unloading code that may have live threads or
//! thread-locals is undefined behaviour), so a config reload that points at a changed file
//! is refused with "restart needed".

use super::secrets::{self, SecretError, Secrets};
use shopsync_sink_abi::{EntryFn, Message, VTable, ABI_VERSION, ENTRY_SYMBOL, OK, REJECT};
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HostError {
    #[error("sink plugin {name:?}: no library {tried} in {dir}")]
    NotFound { name: String, dir: String, tried: String },
    #[error("sink plugin {name:?}: refused: {why}")]
    Refused { name: String, why: String },
    #[error("sink plugin {path}: speaks ABI version {found}, this shopsync speaks {ABI_VERSION}")]
    AbiVersion { path: String, found: u32 },
    #[error("sink plugin {path}: cannot load: {why}")]
    Load { path: String, why: String },
    #[error("sink plugin {path} changed on disk since it was loaded; restart shopsync to load the new one")]
    RestartNeeded { path: String },
    #[error("sink {sink}: plugin refused its config: {message}")]
    Create { sink: String, message: String },
    #[error("sink {sink}: {source}")]
    Secret { sink: String, source: SecretError },
}

impl HostError {
    /// Whether trying again later can help without a restart: an instance the plugin would
    /// not create (its database is down, a secret file is not there yet) or a library that is
    /// not installed yet. A wrong ABI, a refused file or a changed library stay as they are.
    pub fn may_heal(&self) -> bool {
        matches!(self, HostError::Create { .. } | HostError::Secret { .. } | HostError::NotFound { .. })
    }
}

/// A loaded library and its checked table. Lives until the process exits.
pub struct Plugin {
    pub path: PathBuf,
    pub name: String,
    fingerprint: (u64, Option<SystemTime>),
    vtable: &'static VTable,
    /// `None` for the built-in JSONL sink, linked into the binary.
    _lib: Option<libloading::Library>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("path", &self.path).field("name", &self.name).finish()
    }
}

/// Every library loaded so far; entries are never removed, so libraries are never unloaded.
fn loaded() -> &'static Mutex<HashMap<PathBuf, Arc<Plugin>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Plugin>>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn fingerprint(path: &Path) -> (u64, Option<SystemTime>) {
    std::fs::metadata(path).map(|m| (m.len(), m.modified().ok())).unwrap_or((0, None))
}

fn writable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o022 != 0).unwrap_or(true)
}

/// Loads the plugin `name` (`libshopsync_sink_<name>.so` or `<name>.so`) from `dir`.
pub fn load(dir: &Path, name: &str) -> Result<Arc<Plugin>, HostError> {
    let refused = |why: String| HostError::Refused { name: name.to_string(), why };
    if name.is_empty() || name.contains(['/', '\\']) || name.contains("..") {
        return Err(refused("a plugin name is a file name in plugin_dir, not a path".into()));
    }
    let candidates =
        [dir.join(format!("libshopsync_sink_{}.so", name.replace('-', "_"))), dir.join(format!("{name}.so"))];
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        if name == "jsonl" {
            return Ok(builtin_jsonl());
        }
        let tried: Vec<String> = candidates
            .iter()
            .filter_map(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        return Err(HostError::NotFound {
            name: name.into(),
            dir: dir.display().to_string(),
            tried: tried.join(" or "),
        });
    };
    let real = path.canonicalize().map_err(|e| refused(format!("{}: {e}", path.display())))?;
    let real_dir = dir.canonicalize().map_err(|e| refused(format!("{}: {e}", dir.display())))?;
    if !real.starts_with(&real_dir) {
        return Err(refused(format!("{} leads outside plugin_dir", path.display())));
    }
    for p in [&real, &real_dir] {
        if writable_by_others(p) {
            return Err(refused(format!("{} is group- or world-writable", p.display())));
        }
    }
    let mut map = loaded().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&real) {
        if p.fingerprint != fingerprint(&real) {
            return Err(HostError::RestartNeeded { path: real.display().to_string() });
        }
        return Ok(p.clone());
    }
    let shown = real.display().to_string();
    let load_err = |why: String| HostError::Load { path: shown.clone(), why };
    // SAFETY: loading a library runs its initializers. We only load files from the
    // operator's plugin_dir that nobody but their owner can write: the trust boundary is the
    // folder's ownership, as for any plugin system.
    let lib = unsafe { libloading::Library::new(&real) }.map_err(|e| load_err(e.to_string()))?;
    // SAFETY: the symbol is declared in the ABI header with exactly this signature.
    let entry: EntryFn = unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL) }
        .map(|s| *s)
        .map_err(|e| load_err(format!("no shopsync_sink_entry symbol: {e}")))?;
    // SAFETY: calling the entry function is what the ABI defines; it returns a pointer to a
    // static table or null.
    let table = unsafe { entry() };
    // SAFETY: a non-null pointer from the entry function points to a static table that lives
    // as long as the library, which we never unload (hence 'static).
    let vtable: &'static VTable =
        unsafe { table.as_ref() }.ok_or_else(|| load_err("entry returned null".into()))?;
    if vtable.abi_version != ABI_VERSION {
        return Err(HostError::AbiVersion { path: shown, found: vtable.abi_version });
    }
    if vtable.create.is_none()
        || vtable.deliver.is_none()
        || vtable.flush.is_none()
        || vtable.destroy.is_none()
    {
        return Err(load_err("the table lacks a function".into()));
    }
    let pname = if vtable.name.is_null() {
        name.to_string()
    } else {
        // SAFETY: the ABI says `name` is a static NUL-terminated string.
        unsafe { CStr::from_ptr(vtable.name) }.to_string_lossy().into_owned()
    };
    let plugin = Arc::new(Plugin {
        fingerprint: fingerprint(&real),
        path: real.clone(),
        name: pname,
        vtable,
        _lib: Some(lib),
    });
    map.insert(real, plugin.clone());
    tracing::info!(plugin = %plugin.name, path = %plugin.path.display(), "sink plugin loaded");
    Ok(plugin)
}

/// The JSONL sink linked into the binary, used when `plugin_dir` has no `jsonl` library:
/// a fresh install (and `shopsync demo`) has a working sink without installing plugins. It
/// goes through the same table as a loaded one.
fn builtin_jsonl() -> Arc<Plugin> {
    static BUILTIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            let table: &'static VTable = {
                let p = shopsync_sink_jsonl::shopsync_sink_entry();
                // SAFETY: the entry function returns a pointer to a static table.
                match unsafe { p.as_ref() } {
                    Some(t) => t,
                    None => unreachable!("the built-in table is a static"),
                }
            };
            Arc::new(Plugin {
                path: PathBuf::from("(built in)"),
                name: "jsonl".into(),
                fingerprint: (0, None),
                vtable: table,
                _lib: None,
            })
        })
        .clone()
}

/// How a plugin call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Ok,
    Retry(String),
    Reject(String),
}

struct Ptr(*mut c_void);
// SAFETY: the ABI lets the host call an instance from any thread, one call at a time; the
// Mutex in `Instance` guarantees the "one at a time".
unsafe impl Send for Ptr {}

/// One sink's live instance of a plugin. Calls block: run them on a blocking thread.
pub struct Instance {
    plugin: Arc<Plugin>,
    ptr: Mutex<Ptr>,
    /// Scrubbed from every message the plugin writes.
    secrets: Secrets,
}

const MESSAGE_CAP: usize = 2048;

fn message_text(buf: &[u8], len: usize) -> String {
    String::from_utf8_lossy(&buf[..len.min(buf.len())]).into_owned()
}

impl Instance {
    pub fn create(
        plugin: Arc<Plugin>,
        sink: &str,
        config: &serde_json::Value,
    ) -> Result<Instance, HostError> {
        let (config, secrets) =
            secrets::resolve(config).map_err(|source| HostError::Secret { sink: sink.into(), source })?;
        let cfg = serde_json::to_vec(&config).unwrap_or_default();
        let mut buf = vec![0u8; MESSAGE_CAP];
        let mut msg = Message { buf: buf.as_mut_ptr(), cap: buf.len(), len: 0 };
        let create = plugin
            .vtable
            .create
            .ok_or_else(|| HostError::Create { sink: sink.into(), message: "no create".into() })?;
        // SAFETY: `cfg` and `buf` are host-owned and outlive the call; the pointers and
        // lengths match them, as the ABI requires.
        let ptr = unsafe { create(cfg.as_ptr(), cfg.len(), &mut msg) };
        if ptr.is_null() {
            let message = secrets.scrub(&message_text(&buf, msg.len));
            return Err(HostError::Create { sink: sink.into(), message });
        }
        Ok(Instance { plugin, ptr: Mutex::new(Ptr(ptr)), secrets })
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    fn call(&self, f: impl FnOnce(*mut c_void, *mut Message) -> i32) -> Call {
        let guard = self.ptr.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = vec![0u8; MESSAGE_CAP];
        let mut msg = Message { buf: buf.as_mut_ptr(), cap: buf.len(), len: 0 };
        let code = f(guard.0, &mut msg);
        let text = self.secrets.scrub(&message_text(&buf, msg.len));
        match code {
            OK => Call::Ok,
            REJECT => Call::Reject(text),
            // RETRY, and any code a newer plugin might invent, is retried.
            _ => Call::Retry(if text.is_empty() { format!("plugin returned code {code}") } else { text }),
        }
    }

    /// Delivers a batch (a JSON array of events). Blocks.
    pub fn deliver(&self, batch: &[u8]) -> Call {
        let Some(deliver) = self.plugin.vtable.deliver else { return Call::Reject("no deliver".into()) };
        // SAFETY: the instance came from this plugin's create; `batch` and the message buffer
        // are host-owned and outlive the call; the Mutex serializes calls.
        self.call(|inst, msg| unsafe { deliver(inst, batch.as_ptr(), batch.len(), msg) })
    }

    /// Asks the plugin to make what it accepted durable. Blocks.
    pub fn flush(&self) -> Call {
        let Some(flush) = self.plugin.vtable.flush else { return Call::Ok };
        // SAFETY: as in `deliver`.
        self.call(|inst, msg| unsafe { flush(inst, msg) })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let ptr = self.ptr.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(destroy) = self.plugin.vtable.destroy {
            // SAFETY: the instance came from this plugin's create and is not used again.
            unsafe { destroy(ptr.0) };
        }
    }
}
