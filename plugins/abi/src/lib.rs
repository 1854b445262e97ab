//! The shopsync sink plugin ABI (`include/shopsync_sink.h`), for Rust plugins and the host.
//!
//! A Rust plugin implements [`Sink`] and calls [`export_sink!`] once; the macro exports the
//! entry symbol with a static [`VTable`] whose functions catch every panic at the boundary (a
//! panic unwinding out of `extern "C"` would abort the whole daemon) and turn it into an
//! error. The host uses the same types to read a library's table.

pub mod event;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The ABI version this crate speaks; the host refuses any other.
pub const ABI_VERSION: u32 = 1;
pub const OK: i32 = 0;
pub const RETRY: i32 = 1;
pub const REJECT: i32 = 2;
/// Name of the exported entry function.
pub const ENTRY_SYMBOL: &[u8] = b"shopsync_sink_entry\0";

/// A host-owned buffer the plugin writes an error message into.
#[repr(C)]
pub struct Message {
    pub buf: *mut u8,
    pub cap: usize,
    pub len: usize,
}

/// The table a plugin exports. Fields are only ever appended.
#[repr(C)]
pub struct VTable {
    pub abi_version: u32,
    pub name: *const std::ffi::c_char,
    pub create: Option<unsafe extern "C" fn(*const u8, usize, *mut Message) -> *mut std::ffi::c_void>,
    pub deliver: Option<unsafe extern "C" fn(*mut std::ffi::c_void, *const u8, usize, *mut Message) -> i32>,
    pub flush: Option<unsafe extern "C" fn(*mut std::ffi::c_void, *mut Message) -> i32>,
    pub destroy: Option<unsafe extern "C" fn(*mut std::ffi::c_void)>,
}

// SAFETY: the table is immutable static data (a version, a pointer to a static string and
// function pointers); sharing it between threads is sound.
unsafe impl Sync for VTable {}

/// The signature of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const VTable;

/// Why a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// Transient (connection lost, deadlock, shutdown, disk full…): the host delivers the
    /// same events again later. Drop the failed connection so the next call reconnects.
    Retry(String),
    /// Some event is unacceptable (a data error): the host splits the batch until the
    /// refused events are alone and dead-letters only those. Never for a failure that waiting
    /// could cure.
    Reject(String),
}

impl SinkError {
    pub fn code(&self) -> i32 {
        match self {
            SinkError::Retry(_) => RETRY,
            SinkError::Reject(_) => REJECT,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            SinkError::Retry(m) | SinkError::Reject(m) => m,
        }
    }
}

/// A sink, as a Rust plugin writes it.
pub trait Sink: Sized + Send + 'static {
    /// Builds an instance from the sink's `[sinks.config]` table.
    fn create(config: serde_json::Value) -> Result<Self, String>;
    /// Delivers a batch: `events` is a JSON array of change events.
    fn deliver(&mut self, events: &[u8]) -> Result<(), SinkError>;
    /// Makes what was delivered durable.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Writes `msg` into the host's buffer, truncated to its capacity.
///
/// # Safety
/// `out` is null or points to a valid [`Message`] whose `buf` holds `cap` writable bytes.
pub unsafe fn write_message(out: *mut Message, msg: &str) {
    // SAFETY: the caller guarantees `out` is null or valid.
    let Some(m) = (unsafe { out.as_mut() }) else { return };
    if m.buf.is_null() {
        return;
    }
    let n = msg.len().min(m.cap);
    // SAFETY: `buf` has `cap` writable bytes and `n <= cap`; the regions cannot overlap
    // (one is the host's buffer, the other a Rust string).
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), m.buf, n) };
    m.len = n;
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("plugin panicked: {what}")
}

/// The body of a plugin's `create`. Used by [`export_sink!`].
///
/// # Safety
/// `config` points to `len` readable bytes; `err` is null or a valid [`Message`].
pub unsafe fn create_impl<S: Sink>(
    config: *const u8,
    len: usize,
    err: *mut Message,
) -> *mut std::ffi::c_void {
    let result = catch_unwind(|| {
        // SAFETY: the host passes `len` readable bytes at `config`.
        let bytes =
            if config.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(config, len) } };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("config is not JSON: {e}"))?;
        S::create(value)
    });
    match result {
        Ok(Ok(sink)) => Box::into_raw(Box::new(sink)).cast(),
        Ok(Err(msg)) => {
            // SAFETY: forwarded from the caller's guarantee.
            unsafe { write_message(err, &msg) };
            std::ptr::null_mut()
        }
        Err(p) => {
            // SAFETY: as above.
            unsafe { write_message(err, &panic_text(p)) };
            std::ptr::null_mut()
        }
    }
}

fn finish(result: std::thread::Result<Result<(), SinkError>>, err: *mut Message) -> i32 {
    match result {
        Ok(Ok(())) => OK,
        Ok(Err(e)) => {
            // SAFETY: `err` comes from the host, null or valid.
            unsafe { write_message(err, e.message()) };
            e.code()
        }
        Err(p) => {
            // SAFETY: as above.
            unsafe { write_message(err, &panic_text(p)) };
            RETRY
        }
    }
}

/// The body of a plugin's `deliver`. Used by [`export_sink!`].
///
/// # Safety
/// `instance` came from this plugin's `create`; `events` points to `len` readable bytes; `err`
/// is null or valid; the host never calls one instance from two threads at once.
pub unsafe fn deliver_impl<S: Sink>(
    instance: *mut std::ffi::c_void,
    events: *const u8,
    len: usize,
    err: *mut Message,
) -> i32 {
    // SAFETY: `instance` is a `Box<S>` from `create_impl`, used by one thread at a time.
    let Some(sink) = (unsafe { instance.cast::<S>().as_mut() }) else {
        // SAFETY: as above.
        unsafe { write_message(err, "null instance") };
        return REJECT;
    };
    // SAFETY: the host passes `len` readable bytes.
    let bytes = if events.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(events, len) } };
    finish(catch_unwind(AssertUnwindSafe(|| sink.deliver(bytes))), err)
}

/// The body of a plugin's `flush`. Used by [`export_sink!`].
///
/// # Safety
/// As for [`deliver_impl`].
pub unsafe fn flush_impl<S: Sink>(instance: *mut std::ffi::c_void, err: *mut Message) -> i32 {
    // SAFETY: as in `deliver_impl`.
    let Some(sink) = (unsafe { instance.cast::<S>().as_mut() }) else { return REJECT };
    finish(catch_unwind(AssertUnwindSafe(|| sink.flush())), err)
}

/// The body of a plugin's `destroy`. Used by [`export_sink!`].
///
/// # Safety
/// `instance` came from this plugin's `create` and is not used afterwards.
pub unsafe fn destroy_impl<S: Sink>(instance: *mut std::ffi::c_void) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` is the `Box<S>` `create_impl` leaked; ownership returns here once.
        drop(unsafe { Box::from_raw(instance.cast::<S>()) });
    }));
}

/// Exports `$ty` (a [`Sink`]) as a plugin named `$name`.
#[macro_export]
macro_rules! export_sink {
    ($name:literal, $ty:ty) => {
        unsafe extern "C" fn __shopsync_create(
            c: *const u8,
            l: usize,
            e: *mut $crate::Message,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the host keeps the ABI's promises (see the header).
            unsafe { $crate::create_impl::<$ty>(c, l, e) }
        }
        unsafe extern "C" fn __shopsync_deliver(
            i: *mut ::std::ffi::c_void,
            b: *const u8,
            l: usize,
            e: *mut $crate::Message,
        ) -> i32 {
            // SAFETY: as above.
            unsafe { $crate::deliver_impl::<$ty>(i, b, l, e) }
        }
        unsafe extern "C" fn __shopsync_flush(i: *mut ::std::ffi::c_void, e: *mut $crate::Message) -> i32 {
            // SAFETY: as above.
            unsafe { $crate::flush_impl::<$ty>(i, e) }
        }
        unsafe extern "C" fn __shopsync_destroy(i: *mut ::std::ffi::c_void) {
            // SAFETY: as above.
            unsafe { $crate::destroy_impl::<$ty>(i) }
        }
        static __SHOPSYNC_VTABLE: $crate::VTable = $crate::VTable {
            abi_version: $crate::ABI_VERSION,
            name: concat!($name, "\0").as_ptr().cast(),
            create: Some(__shopsync_create),
            deliver: Some(__shopsync_deliver),
            flush: Some(__shopsync_flush),
            destroy: Some(__shopsync_destroy),
        };
        /// The plugin's entry point.
        #[no_mangle]
        pub extern "C" fn shopsync_sink_entry() -> *const $crate::VTable {
            &__SHOPSYNC_VTABLE
        }
    };
}
