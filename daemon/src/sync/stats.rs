//! Live counters of one pass: read by the progress bar while it runs, summed into the
//! pass report at its end.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PassStats {
    pub list_calls: AtomicU64,
    pub count_calls: AtomicU64,
    pub sku_calls: AtomicU64,
    pub item_calls: AtomicU64,
    pub other_calls: AtomicU64,
    pub items_seen: AtomicU64,
    pub windows_done: AtomicU64,
    pub windows_left: AtomicU64,
    pub splits: AtomicU64,
    /// List pages read again because items left the window while it was read (the pages
    /// behind shifted; see `window::read_window`).
    pub rereads: AtomicU64,
    /// Items no query reaches: past the depth cap of one category on one millisecond, or
    /// counted on a millisecond but in no category the seller lists.
    pub unreachable: AtomicU64,
    /// Items the platform sent in a shape that could not be read (quarantined).
    pub quarantined: AtomicU64,
    pub creates: AtomicU64,
    pub updates: AtomicU64,
    pub deletes: AtomicU64,
    pub skus_fetched: AtomicU64,
    /// Set by the daemon on shutdown: the pass stops after the page in hand.
    pub stop: std::sync::atomic::AtomicBool,
    /// Calls this session may spend (0: no limit); past it the pass stops after the page in
    /// hand, as on shutdown. The budget planner caps full sessions this way: a full pass is
    /// resumable, so stopping one costs nothing.
    pub budget: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl PassStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn calls(&self) -> u64 {
        [&self.list_calls, &self.count_calls, &self.sku_calls, &self.item_calls, &self.other_calls]
            .iter()
            .map(|c| Self::get(c))
            .sum()
    }

    /// Asks the pass to stop after the page in hand (each page commits on its own, so
    /// nothing committed is lost and the watermark stays where the last page left it).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.over_budget()
    }

    /// The session spent the calls it was given.
    pub fn over_budget(&self) -> bool {
        let b = Self::get(&self.budget);
        b > 0 && self.calls() >= b
    }

    pub fn events(&self) -> u64 {
        Self::get(&self.creates) + Self::get(&self.updates) + Self::get(&self.deletes)
    }
}
