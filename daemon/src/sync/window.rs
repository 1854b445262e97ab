//! Reading windows: one window (a span of `modified_time`, maybe one category) page by page,
//! splitting it when saturated, committing each page with its items, events and, for
//! incremental passes, the watermark the page allows.
//!
//! **The watermark rule** lives in [`page_watermark`] and [`done_watermark`], and nowhere
//! else: the watermark says "every change below this is stored with its event", so it may
//! only move over what was read without a gap.
//! - a page of a time-ordered window moves it to the page's last `modified_time`, unless the
//!   read has shifted in a way it could not repair (items that slipped back when others left
//!   the window are re-read before the next page commits; see [`read_window`]);
//! - a window read to its end moves it to the window's end, unless its read shifted that way;
//! - once a window's read shifted that way, nothing later in the same pass moves it: a
//!   slipped item would fall behind it. The next pass reads from there again;
//! - a full pass moves it once, when it is done, to its start time, but never past the
//!   start of a window whose last read shifted.

use super::diff::{apply, diff};
use super::engine::{Engine, SyncError};
use super::enrich::SkuBatcher;
use super::normalize::{listing, with_skus, NormalizedListing};
use super::plan::{split_category, split_time, Window, DEPTH_CAP};
use super::stats::{bump, PassStats};
use crate::api::{ApiError, BadItem, ItemFilter, MemberId, RawItem, SortType};
use crate::state::{Gap, PageMark, Parked, SplitMs, StoredItem, WindowState, Write};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Everything the windows of one pass share.
pub(super) struct Ctx {
    pub engine: Engine,
    pub shop: MemberId,
    pub stats: Arc<PassStats>,
    pub cats: tokio::sync::OnceCell<Vec<String>>,
    pub refresh_all_skus: bool,
    /// Full passes with `full_pass_skus = "changed"`: SKU details fetched before this are
    /// fetched again (a variant's price or stock can change with the listing untouched).
    pub skus_stale_before: Option<i64>,
    pub incremental: bool,
    /// The open full pass's id: items written are stamped with it (the store does the
    /// stamping; diffing must not skip an unchanged item that lacks it).
    pub mark: Option<u64>,
    /// A full pass keeps its windows in the shop's state, so it resumes where it stopped.
    pub persist_windows: bool,
    /// Set once a window's last read shifted: the pass moves the watermark no further.
    pub held: AtomicBool,
    /// The earliest start of a window whose last read shifted (`i64::MAX`: none).
    pub held_at: AtomicI64,
    /// Calls and time already added to the open full pass's progress.
    accounted: std::sync::Mutex<(u64, i64)>,
    /// Milliseconds split by category, while their parts are read, by the millisecond. A full
    /// pass keeps them in its progress too, so a split read across sessions is still checked.
    groups: std::sync::Mutex<std::collections::HashMap<i64, SplitMs>>,
}

/// A millisecond split by category, read to its end: does it add up?
#[derive(Debug, Default)]
struct Group {
    /// What the platform counts on that millisecond, all categories together.
    expected: u64,
    /// What its parts counted (their honest totals, past the depth cap too).
    counted: u64,
    /// Items of parts past the depth cap of a single category.
    capped: u64,
}

impl Ctx {
    pub fn new(engine: Engine, shop: MemberId, stats: Arc<PassStats>, incremental: bool) -> Ctx {
        Ctx {
            engine,
            shop,
            stats,
            cats: tokio::sync::OnceCell::new(),
            refresh_all_skus: false,
            skus_stale_before: None,
            incremental,
            mark: None,
            persist_windows: false,
            held: AtomicBool::new(false),
            held_at: AtomicI64::new(i64::MAX),
            accounted: std::sync::Mutex::new((0, crate::clock::now_ms())),
            groups: Default::default(),
        }
    }

    /// Calls and time spent since the last call of this, for the open pass's progress.
    pub fn unaccounted(&self) -> (u64, i64) {
        let now = crate::clock::now_ms();
        let calls = self.stats.calls();
        let mut a = self.accounted.lock().unwrap_or_else(|e| e.into_inner());
        let d = (calls.saturating_sub(a.0), (now - a.1).max(0));
        *a = (calls, now);
        d
    }

    pub fn shop(&self) -> &str {
        self.shop.as_str()
    }

    fn hold(&self, at: i64) {
        self.held.store(true, Ordering::Relaxed);
        self.held_at.fetch_min(at, Ordering::Relaxed);
    }

    pub fn held_at(&self) -> Option<i64> {
        Some(self.held_at.load(Ordering::Relaxed)).filter(|&t| t != i64::MAX)
    }

    /// Whether the shop already knows a gap on this millisecond.
    fn known_gap(&self, at: i64) -> Result<bool, SyncError> {
        Ok(self.engine.store.shop(self.shop())?.unreachable.contains_key(&at))
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, SplitMs>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The splits an open full pass left in its progress (a resumed session goes on with them).
    pub fn resume_splits(&self, splits: &[SplitMs]) {
        self.groups().extend(splits.iter().map(|g| (g.at, g.clone())));
    }

    /// Keeps the splits in the open full pass's progress. Each part's figures are keyed by
    /// its category, so a part read again after a kill overwrites rather than adds.
    fn persist_splits(&self, groups: &std::collections::HashMap<i64, SplitMs>) -> Result<(), SyncError> {
        if !self.persist_windows {
            return Ok(());
        }
        let mut splits: Vec<SplitMs> = groups.values().cloned().collect();
        splits.sort_by_key(|g| g.at);
        self.engine.store.update_shop(self.shop(), |st| {
            if let Some(f) = st.full.as_mut() {
                f.splits = splits.clone();
            }
        })?;
        Ok(())
    }

    /// A millisecond was split into `parts` category windows; it counts `total`.
    fn open_group(&self, w: &Window, total: u64, parts: usize) -> Result<(), SyncError> {
        let mut groups = self.groups();
        groups.insert(w.start, SplitMs { at: w.start, expected: total, parts, ..SplitMs::default() });
        self.persist_splits(&groups)
    }

    /// A category part's first page: what it counts, and how much of that lies past the cap.
    fn count_part(&self, w: &Window, total: u64, capped: u64) -> Result<(), SyncError> {
        let mut groups = self.groups();
        let Some(g) = groups.get_mut(&w.start) else { return Ok(()) };
        g.counts.insert(w.cid.clone().unwrap_or_default(), (total, capped));
        self.persist_splits(&groups)
    }

    /// A category part was read to its end: the group, when it was its last part (to be
    /// checked with [`check_group`], which closes it). The group stays in the pass's progress
    /// until its check is done, so a check cut off is resumed with the part that found it.
    fn part_done(&self, w: &Window) -> Result<Option<Group>, SyncError> {
        let mut groups = self.groups();
        let Some(g) = groups.get_mut(&w.start) else {
            // Split by a session whose figures are lost (an incremental pass does not keep
            // them): hold the watermark there; the next pass splits it again, whole.
            self.hold(w.start);
            return Ok(None);
        };
        g.done.insert(w.cid.clone().unwrap_or_default());
        if g.done.len() < g.parts {
            return self.persist_splits(&groups).map(|()| None);
        }
        let group = Group {
            expected: g.expected,
            counted: g.counts.values().map(|c| c.0).sum(),
            capped: g.counts.values().map(|c| c.1).sum(),
        };
        self.persist_splits(&groups)?;
        Ok(Some(group))
    }

    /// The millisecond's check is done: it leaves the pass's progress.
    fn close_group(&self, at: i64) -> Result<(), SyncError> {
        let mut groups = self.groups();
        if groups.remove(&at).is_some() {
            self.persist_splits(&groups)?;
        }
        Ok(())
    }

    /// Whether this category part of a split millisecond counted more than 50 pages reach.
    fn part_capped(&self, w: &Window) -> bool {
        let groups = self.groups();
        let cid = w.cid.clone().unwrap_or_default();
        groups.get(&w.start).and_then(|g| g.counts.get(&cid)).is_some_and(|c| c.1 > 0)
    }

    /// The next page of an extra read of a split millisecond ([`SplitMs::READ_DONE`]: none).
    fn read_from(&self, at: i64, read: &str) -> u32 {
        self.groups().get(&at).and_then(|g| g.reads.get(read).copied()).unwrap_or(1)
    }

    /// An extra read's page is committed: the read goes on from `next` after a cut.
    fn read_committed(&self, at: i64, read: &str, next: u32) -> Result<(), SyncError> {
        let mut groups = self.groups();
        let Some(g) = groups.get_mut(&at) else { return Ok(()) };
        g.reads.insert(read.to_string(), next);
        self.persist_splits(&groups)
    }
}

/// The rule for a millisecond split by category: its parts must add up to it.
///
/// When they do not (items whose category the seller does not list, one category past the
/// depth cap, a seller without categories), the millisecond's own first 50 pages and its
/// first 50 by sales volume are read too (`extra`: those not read already): those orders
/// reach some of the items the category queries cannot, and nothing else does. What is still
/// missing then is a gap: reported (the pass's `unreachable`, the shop's known gaps in
/// `status` and metrics) and, when it was not known before and a second count of the
/// millisecond shows it changed while read, holding the watermark before that millisecond
/// (see [`recount`]). A gap found again, the same size or smaller, is known: an incremental pass
/// neither reads the extra orders again nor holds the watermark for it (no query can fetch
/// those items, and holding would re-read everything since on every poll). Smaller counts as
/// known because items only ever leave a past millisecond (a change moves an item's
/// `modified_time` to now, where the next windows read it); only a new gap, or one that grew,
/// can be a miscount of a read that raced with changes, and only those hold the watermark.
/// Full passes always read them, so they see those items.
async fn check_group(ctx: &Arc<Ctx>, at: i64, g: &Group, extra: &[SortType]) -> Result<(), SyncError> {
    let found = g.expected.saturating_sub(g.counted) + g.capped;
    let known = ctx.engine.store.shop(ctx.shop())?.unreachable.get(&at).cloned();
    if found == 0 {
        if known.is_some() {
            ctx.engine.store.update_shop(ctx.shop(), |st| {
                st.unreachable.remove(&at);
            })?;
        }
        return ctx.close_group(at);
    }
    if let Some(k) = known.as_ref().filter(|k| found <= k.found && ctx.incremental) {
        bump(&ctx.stats.unreachable, k.items.min(found));
        return ctx.close_group(at);
    }
    for &sort in extra {
        read_millisecond(ctx, at, None, sort).await?;
    }
    // What the store holds on that millisecond now (stamped by this full pass, if one is open).
    let mut held = 0u64;
    for s in ctx.engine.store.items(ctx.shop()) {
        let s = s?;
        if s.item.modified_ms == at && (ctx.mark.is_none() || s.seen == ctx.mark) {
            held += 1;
        }
    }
    let items = g.expected.saturating_sub(held);
    bump(&ctx.stats.unreachable, items);
    let gap = Gap { found, items };
    if known.as_ref() != Some(&gap) {
        let grew = known.as_ref().is_none_or(|k| found > k.found || items > k.items);
        if items > 0 && grew {
            // A new gap is counted again at once (one call): if no item left the millisecond
            // since its first count, its parts were counted on the same items and the gap is
            // real; holding the watermark would only re-list everything since it (thousands
            // of calls on a big shop) to find it again. If items left, the read raced with
            // changes, and the watermark stays before it until a pass finds it again.
            let again = recount(ctx, at).await?;
            if again == g.expected {
                tracing::warn!(
                    shop = %ctx.shop, at_ms = at, expected = g.expected, counted = g.counted, past_cap = g.capped,
                    unreachable = items, "a millisecond's items are not all reachable (counted twice); no query reaches them"
                );
            } else {
                tracing::warn!(
                    shop = %ctx.shop, at_ms = at, expected = g.expected, counted_again = again, unreachable = items,
                    "a millisecond's items are not all reachable and changed while read; the watermark stays before it this time"
                );
                ctx.hold(at);
            }
        }
        ctx.engine.store.update_shop(ctx.shop(), |st| {
            st.unreachable.insert(at, gap.clone());
        })?;
    }
    ctx.close_group(at)
}

/// Counts one millisecond again, all categories together, in one call: its first page, the
/// same call that counted it when it was split (so both counts are the same measure).
async fn recount(ctx: &Arc<Ctx>, at: i64) -> Result<u64, SyncError> {
    let e = &ctx.engine;
    let filter = ItemFilter { offline: ctx.incremental, cid: None, start_ms: Some(at), end_ms: Some(at + 1) };
    bump(&ctx.stats.list_calls, 1);
    let p = e.client.items_list(&ctx.shop, &filter, 1, e.sync.page_size, SortType::ModifiedAsc).await?;
    Ok(p.total_results)
}

/// Reads the first 50 pages of one millisecond (of one category, or all) in `sort` order,
/// from where a cut-off session left that read (kept with the millisecond's split).
async fn read_millisecond(
    ctx: &Arc<Ctx>,
    at: i64,
    cid: Option<String>,
    sort: SortType,
) -> Result<(), SyncError> {
    let e = &ctx.engine;
    let size = e.sync.page_size;
    let read = format!("{sort:?}{}", cid.as_deref().map(|c| format!(" cid {c}")).unwrap_or_default());
    let first = ctx.read_from(at, &read);
    if first == SplitMs::READ_DONE {
        return Ok(());
    }
    let w = Window { page_marks: false, mark_on_done: None, cid: cid.clone(), ..Window::time(at, at + 1) };
    let filter = ItemFilter { offline: false, cid, start_ms: Some(at), end_ms: Some(at + 1) };
    let mut batcher = SkuBatcher::default();
    let mut staged: VecDeque<StagedPage> = VecDeque::new();
    for page in first..=DEPTH_CAP as u32 {
        bump(&ctx.stats.list_calls, 1);
        let p = e.client.items_list(&ctx.shop, &filter, page, size, sort).await?;
        let last = p.items.is_empty()
            || u64::from(page) * u64::from(size) >= p.total_results
            || u64::from(page) == DEPTH_CAP;
        let mut s = stage(ctx, &w, p.items, p.bad, None, None, &mut batcher)?;
        s.read = Some((at, read.clone(), if last { SplitMs::READ_DONE } else { page + 1 }));
        staged.push_back(s);
        fetch_due(ctx, &mut staged, &mut batcher, last).await?;
        if last {
            break;
        }
        if ctx.stats.stopping() {
            // As in `read_window`: the pages read are paid for, commit them first.
            fetch_due(ctx, &mut staged, &mut batcher, true).await?;
            return Err(SyncError::Stopped);
        }
    }
    Ok(())
}

/// The watermark a page allows (see the module doc).
fn page_watermark(ctx: &Ctx, w: &Window, items: &[RawItem], shifted: bool) -> Option<i64> {
    if !ctx.incremental || !w.page_marks || shifted || ctx.held.load(Ordering::Relaxed) {
        return None;
    }
    items.last().and_then(|i| i.modified_time)
}

/// The watermark a window read to its end allows (see the module doc).
fn done_watermark(ctx: &Ctx, w: &Window, last_read_shifted: bool) -> Option<i64> {
    if last_read_shifted {
        ctx.hold(w.start);
        return None;
    }
    if !ctx.incremental || ctx.held.load(Ordering::Relaxed) {
        return None;
    }
    w.mark_on_done
}

/// A window to read, with where a previous session left it.
pub(super) struct Task {
    pub window: Window,
    pub resume: WindowState,
}

impl Task {
    pub fn fresh(window: Window) -> Task {
        let resume = WindowState::new(window.start, window.end, window.cid.clone());
        Task { window, resume }
    }

    pub fn resumed(resume: WindowState) -> Task {
        let mut window = Window::time(resume.start, resume.end);
        if resume.cid.is_some() {
            // A category part of a split millisecond, as `split_category` made it: its pages
            // are not in time order and it is checked with its group.
            window.page_marks = false;
            window.mark_on_done = None;
        }
        window.cid = resume.cid.clone();
        Task { window, resume }
    }
}

/// Reads windows, `concurrency` at a time; a saturated window is replaced by its parts,
/// read next (so a sequential run stays in time order). A full pass records each split and
/// each finished window in its progress.
///
/// The first window that fails (the quota ran out, say) stops the others after the page in
/// hand, and they are waited for rather than aborted: one aborted between listing a page and
/// placing it (after its first SKU batch) lost the page's place, so the next session listed
/// it again.
pub(super) async fn run_windows(
    ctx: &Arc<Ctx>,
    tasks: Vec<Task>,
    concurrency: usize,
) -> Result<(), SyncError> {
    let mut queue: VecDeque<Task> = tasks.into();
    let mut running = tokio::task::JoinSet::new();
    let stats = &ctx.stats;
    let mut failed: Option<SyncError> = None;
    loop {
        while failed.is_none() && running.len() < concurrency {
            let Some(t) = queue.pop_front() else { break };
            let ctx = ctx.clone();
            running.spawn(async move {
                let r = read_window(&ctx, &t).await;
                (t, r)
            });
        }
        stats.windows_left.store((queue.len() + running.len()) as u64, Ordering::Relaxed);
        let Some(done) = running.join_next().await else { break };
        let outcome = match done {
            Ok((t, Ok(None))) => {
                bump(&stats.windows_done, 1);
                if ctx.persist_windows {
                    let held = ctx.held_at();
                    let recorded = ctx.engine.store.update_shop(ctx.shop(), |st| {
                        if let Some(f) = st.full.as_mut() {
                            let before = f.windows.len();
                            f.windows.retain(|ws| !ws.same(&t.resume));
                            f.windows_done += (before - f.windows.len()) as u64;
                            if let Some(h) = held {
                                f.held_ms = Some(f.held_ms.map_or(h, |x| x.min(h)));
                            }
                        }
                    });
                    recorded.map(|_| ()).map_err(SyncError::from)
                } else {
                    Ok(())
                }
            }
            Ok((t, Ok(Some(parts)))) => {
                bump(&stats.splits, 1);
                if ctx.persist_windows {
                    let states: Vec<WindowState> =
                        parts.iter().map(|p| WindowState::new(p.start, p.end, p.cid.clone())).collect();
                    let recorded = ctx.engine.store.update_shop(ctx.shop(), |st| {
                        if let Some(f) = st.full.as_mut() {
                            if let Some(i) = f.windows.iter().position(|ws| ws.same(&t.resume)) {
                                f.windows.splice(i..=i, states.clone());
                            }
                        }
                    });
                    if let Err(e) = recorded {
                        fail(ctx, &mut failed, e.into());
                        continue;
                    }
                }
                for p in parts.into_iter().rev() {
                    queue.push_front(Task::fresh(p));
                }
                Ok(())
            }
            Ok((_, Err(e))) => Err(e),
            Err(join) => Err(SyncError::Task(join.to_string())),
        };
        if let Err(e) = outcome {
            fail(ctx, &mut failed, e);
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    stats.windows_left.store(0, Ordering::Relaxed);
    Ok(())
}

/// Records a window's failure: the first stops the other windows after their page in hand;
/// one that says more than "stopped" (the quota, the store) replaces a `Stopped`, and the
/// rest are logged.
fn fail(ctx: &Ctx, failed: &mut Option<SyncError>, e: SyncError) {
    ctx.stats.request_stop();
    match failed {
        None => *failed = Some(e),
        Some(SyncError::Stopped) if !matches!(e, SyncError::Stopped) => *failed = Some(e),
        Some(_) if matches!(e, SyncError::Stopped) => {}
        Some(first) => {
            tracing::warn!(shop = %ctx.shop, error = %e, first = %first, "another window failed while the pass stopped")
        }
    }
}

/// One fetched page waiting for its SKU details before it is committed. Items whose details
/// are in are committed at once (a kill then costs only the few still waiting, not the
/// page's SKU calls). An incremental pass commits the page itself (its watermark) once all
/// of it is, in page order; a full pass commits its place in the window at once and parks
/// the items still waiting (see [`commit_parking`]).
#[derive(Default)]
struct StagedPage {
    items: Vec<(NormalizedListing, Option<StoredItem>, bool)>,
    /// Items the page shows delisted (incremental passes ask for those too).
    gone: Vec<String>,
    watermark: Option<i64>,
    mark: Option<PageMark>,
    /// A page of a millisecond's extra read: where that read goes on once this is committed.
    read: Option<(i64, String, u32)>,
    /// Its place is committed and its items are parked (the store's `parked` tree): each one
    /// written leaves it.
    parked: bool,
    /// Parked by an earlier session (see [`unpark`]).
    earlier: bool,
}

/// Reads one window to the end (from where a previous session left it), or returns the
/// windows it must be split into.
async fn read_window(ctx: &Arc<Ctx>, task: &Task) -> Result<Option<Vec<Window>>, SyncError> {
    let e = &ctx.engine;
    let w = &task.window;
    let size = e.sync.page_size;
    let reach = DEPTH_CAP * u64::from(size);
    // Incremental passes include delisted items: a delisting moves `modified_time`, so the
    // window that holds it says so at once instead of waiting for the next full pass.
    let filter = ItemFilter {
        offline: ctx.incremental,
        cid: w.cid.clone(),
        start_ms: Some(w.start),
        end_ms: Some(w.end),
    };
    let resuming = task.resume.next_page > 1 && task.resume.first_total.is_some();
    if !resuming && w.width() > e.sync.slice.as_millis() as i64 {
        if e.client.is_param2() {
            // param2 has no count call: its count is a list call, which stalls on a wide
            // saturated window like any other. Slices of the safe width instead.
            return Ok(Some(super::plan::slices(w.start, w.end, e.sync.slice.as_millis() as i64)));
        }
        // Too wide to list safely (a saturated wide list call stalls 30 s and fails):
        // count first, which never stalls.
        bump(&ctx.stats.count_calls, 1);
        let c = e.client.items_count(&ctx.shop, &filter).await?;
        if c == 0 {
            return Ok(None);
        }
        if c > reach {
            return Ok(Some(split_time(w, 2, 1)));
        }
    }
    // Pages shift when items change during the read (contract, "shifting pages"): when
    // total_results moves between pages, read the window again; diffing makes the re-read
    // free of duplicate events.
    // Pages shift when items change during the read (contract, "shifting pages"): an item
    // modified while the window is read leaves it (its new time is past the window's end),
    // every later item moves up, and the ones at the next page boundary slip onto the page
    // already read. The first page whose total is lower than the last one seen shows it:
    // the k items that left pulled at most k items back onto the pages just behind, so
    // those pages (⌈k / page size⌉ of them) are read again, and the read goes on. Diffing
    // makes the re-reads free of duplicate events. A total that grows (an item entering a
    // window in the past) cannot be repaired that way: then the window counts as shifted
    // and the watermark stays before it.
    let mut batcher = SkuBatcher::default();
    let mut staged: VecDeque<StagedPage> = VecDeque::new();
    let (mut page, mut known_total) =
        if resuming { (task.resume.next_page, task.resume.first_total) } else { (1u32, None) };
    let mut shifted = false;
    let mut rereads = 0u32;
    // A saturated millisecond of a seller without categories: checked once read.
    let mut no_categories: Option<Group> = None;
    // A category part of a millisecond holding more than the cap reaches.
    let mut capped = false;
    // Its last page was committed before a cut that came before the window was marked done
    // (its group's check, say): there is nothing left to list.
    let read_to_end =
        resuming && task.resume.first_total.is_some_and(|t| u64::from(page - 1) * u64::from(size) >= t);
    if !read_to_end {
        loop {
            bump(&ctx.stats.list_calls, 1);
            let p = e.client.items_list(&ctx.shop, &filter, page, size, SortType::ModifiedAsc).await?;
            let total = p.total_results.min(reach);
            match known_total {
                None => {
                    if p.total_results > reach && (w.width() > 1 || w.cid.is_none()) {
                        match split_saturated(ctx, w, p.total_results, &p.items).await? {
                            Some(parts) => return Ok(Some(parts)),
                            // No categories to split by: read the 50 pages there are and
                            // report the rest.
                            None => {
                                let capped = p.total_results - reach;
                                let g = Group { expected: p.total_results, counted: p.total_results, capped };
                                no_categories = Some(g);
                            }
                        }
                    }
                    if w.cid.is_some() && !w.page_marks {
                        capped = p.total_results > reach;
                        ctx.count_part(w, p.total_results, p.total_results.saturating_sub(reach))?;
                    }
                    if p.total_results > reach {
                        // One category, one millisecond, past the cap: nothing reaches the
                        // rest. Read the 50 pages there are; the group's check reports the gap.
                        tracing::warn!(shop = %ctx.shop, cid = ?w.cid, at_ms = w.start, lost = p.total_results - reach, "more items on one millisecond of one category than 50 pages reach");
                    }
                }
                Some(t) if total < t && page > 1 => {
                    // Read again the pages the left items' followers slipped back onto.
                    let back = (t - total).div_ceil(u64::from(size)).min(u64::from(page - 1)) as u32;
                    for again in page - back..page {
                        bump(&ctx.stats.list_calls, 1);
                        rereads += 1;
                        bump(&ctx.stats.rereads, 1);
                        let q = e
                            .client
                            .items_list(&ctx.shop, &filter, again, size, SortType::ModifiedAsc)
                            .await?;
                        staged.push_back(stage(ctx, w, q.items, q.bad, None, None, &mut batcher)?);
                    }
                }
                Some(t) if total > t => shifted = true,
                Some(_) => {}
            }
            known_total = Some(total);
            let last = page as u64 * u64::from(size) >= total || p.items.is_empty();
            let watermark = page_watermark(ctx, w, &p.items, shifted);
            let mark = ctx.persist_windows.then(|| PageMark {
                window: Some(WindowState {
                    start: w.start,
                    end: w.end,
                    cid: w.cid.clone(),
                    next_page: page + 1,
                    first_total: known_total,
                }),
                ..PageMark::default()
            });
            staged.push_back(stage(ctx, w, p.items, p.bad, watermark, mark, &mut batcher)?);
            fetch_due(ctx, &mut staged, &mut batcher, last).await?;
            if last {
                break;
            }
            if ctx.stats.stopping() {
                // The pages read are paid for: fetch the partial SKU batch they wait for (one
                // call at most) and commit them, rather than list them again, and fetch their
                // SKUs again, next session.
                fetch_due(ctx, &mut staged, &mut batcher, true).await?;
                return Err(SyncError::Stopped);
            }
            page += 1;
        }
    }
    fetch_due(ctx, &mut staged, &mut batcher, true).await?;
    if rereads > 0 {
        tracing::debug!(shop = %ctx.shop, start = w.start, end = w.end, rereads, "window shifted while read; the pages behind were read again");
    }
    if shifted {
        tracing::warn!(shop = %ctx.shop, start = w.start, end = w.end, "items entered a window while it was read; the watermark stays before it");
    }
    if w.cid.is_some() && !w.page_marks {
        if (capped || ctx.part_capped(w)) && !(ctx.incremental && ctx.known_gap(w.start)?) {
            // One category past the cap on one millisecond: its sales order reaches others.
            read_millisecond(ctx, w.start, w.cid.clone(), SortType::VolumeDesc).await?;
        }
        if let Some(g) = ctx.part_done(w)? {
            check_group(ctx, w.start, &g, &[SortType::ModifiedAsc, SortType::VolumeDesc]).await?;
        }
    }
    if let Some(g) = no_categories {
        check_group(ctx, w.start, &g, &[SortType::VolumeDesc]).await?;
    }
    if let Some(mark) = done_watermark(ctx, w, shifted) {
        apply(&e.store, ctx.shop(), &ctx.stats, &[], Some(mark), None)?;
    }
    Ok(None)
}

/// The categories a shop's items are known to be in: those of the items stored and of the
/// page in hand. The production protocol has no seller category list (`param2`), so a
/// saturated millisecond is split by these; items of a category none of them shows stay
/// out of reach, and the millisecond's check reports them.
fn known_categories(ctx: &Ctx, page: &[RawItem]) -> Result<Vec<String>, SyncError> {
    let mut cats: std::collections::BTreeSet<String> =
        page.iter().filter_map(|i| i.cid.clone()).filter(|c| !c.is_empty()).collect();
    for s in ctx.engine.store.items(ctx.shop()) {
        let s = s?;
        if !s.item.cid.is_empty() {
            cats.insert(s.item.cid);
        }
    }
    Ok(cats.into_iter().collect())
}

/// A window whose first page said it holds more than 50 pages reach: its parts, or `None`
/// when nothing can split it (one millisecond of a seller without categories).
async fn split_saturated(
    ctx: &Arc<Ctx>,
    w: &Window,
    total: u64,
    first_page: &[RawItem],
) -> Result<Option<Vec<Window>>, SyncError> {
    let reach = DEPTH_CAP * u64::from(ctx.engine.sync.page_size);
    if w.width() > 1 {
        // Aim at 80% of the reach so that most parts need no further split.
        return Ok(Some(split_time(w, total, reach * 4 / 5)));
    }
    if w.cid.is_none() {
        // Thousands of items on one millisecond (a bulk import): only categories reach them.
        let cats = if ctx.engine.client.is_param2() {
            known_categories(ctx, first_page)?
        } else {
            ctx.cats
                .get_or_try_init(|| async {
                    bump(&ctx.stats.other_calls, 1);
                    let cats = ctx.engine.client.seller_cats(&ctx.shop).await?;
                    Ok::<_, ApiError>(cats.into_iter().map(|c| c.cid).collect::<Vec<_>>())
                })
                .await?
                .clone()
        };
        if cats.is_empty() {
            return Ok(None);
        }
        let parts = split_category(w, &cats);
        ctx.open_group(w, total, parts.len())?;
        return Ok(Some(parts));
    }
    Ok(Some(split_time(w, total, reach)))
}

fn stage(
    ctx: &Ctx,
    w: &Window,
    raw: Vec<RawItem>,
    bad: Vec<BadItem>,
    mut watermark: Option<i64>,
    mark: Option<PageMark>,
    batcher: &mut SkuBatcher,
) -> Result<StagedPage, SyncError> {
    let mut items = Vec::with_capacity(raw.len());
    let mut gone = Vec::new();
    let mut unreadable = Vec::new();
    for b in bad {
        unreadable.push(quarantine(ctx, w, b.item_id.as_deref(), &b.error, b.modified_ms)?);
    }
    for r in raw {
        if r.status.as_deref().is_some_and(|s| s != "online") {
            gone.push(r.item_id);
            continue;
        }
        let l = match listing(&r) {
            Ok(l) => l,
            Err(e) => {
                unreadable.push(quarantine(ctx, w, Some(&r.item_id), &e, r.modified_time)?);
                continue;
            }
        };
        bump(&ctx.stats.items_seen, 1);
        let stored = ctx.engine.store.item(ctx.shop(), &l.item.item_id)?;
        let stale =
            |s: &StoredItem| ctx.skus_stale_before.is_some_and(|before| s.skus_ms.is_none_or(|t| t < before));
        let need = ctx.refresh_all_skus
            || stored.as_ref().is_none_or(|s| s.current_listing_md5() != l.listing_md5 || stale(s));
        let need = need && !l.item.sku_ids.is_empty();
        if need {
            batcher.want(&l.item.sku_ids);
        }
        items.push((l, stored, need));
    }
    // The watermark stays behind an unreadable item: everything below its time was read,
    // nothing from it on may count as seen until it parses.
    if let Some(&t) = unreadable.iter().min() {
        watermark = watermark.map(|m| m.min(t));
    }
    Ok(StagedPage { items, gone, watermark, mark, ..StagedPage::default() })
}

/// Sets an unreadable item aside: logged with its id, counted, kept in the quarantine (shown
/// by `status`, tried again by the next pass). Returns the time the watermark must stay
/// behind: the item's own when it could be read, else the window's start.
fn quarantine(
    ctx: &Ctx,
    w: &Window,
    item_id: Option<&str>,
    error: &str,
    modified_ms: Option<i64>,
) -> Result<i64, SyncError> {
    bump(&ctx.stats.quarantined, 1);
    let at = modified_ms.filter(|t| (w.start..w.end).contains(t)).unwrap_or(w.start);
    match item_id {
        Some(id) => {
            let q =
                ctx.engine.store.quarantine(ctx.shop(), id, error, modified_ms, crate::clock::now_ms())?;
            tracing::warn!(shop = %ctx.shop, item_id = id, error, times = q.times, "item unreadable; quarantined, the rest of its page is kept");
        }
        None => {
            tracing::warn!(shop = %ctx.shop, error, window_start = w.start, "item without a readable id; skipped, the rest of its page is kept");
        }
    }
    ctx.hold(at);
    Ok(at)
}

/// Fetches the SKU batches that are due (with `all`, the partial rest too), committing what
/// each one completes, then whatever else is ready. A batch call that fails (the quota
/// running out) commits what is ready first: a full pass's pages in hand are placed, so they
/// are not listed again.
async fn fetch_due(
    ctx: &Ctx,
    staged: &mut VecDeque<StagedPage>,
    batcher: &mut SkuBatcher,
    all: bool,
) -> Result<(), SyncError> {
    // On param2 the details came with the list and asking costs no call: every ask is due at
    // once, so no item waits (nor parks) for a batch to fill, and none outlives the client's
    // memory of the list it came with (a restart empties it).
    let all = all || ctx.engine.client.is_param2();
    while batcher.due(all) {
        if let Err(e) = batcher.fetch_one(&ctx.engine.client, &ctx.stats).await {
            commit_ready(ctx, staged, batcher)?;
            return Err(e.into());
        }
        commit_ready(ctx, staged, batcher)?;
    }
    commit_ready(ctx, staged, batcher)
}

fn ready(batcher: &SkuBatcher, i: &(NormalizedListing, Option<StoredItem>, bool)) -> bool {
    !i.2 || batcher.ready(&i.0.item.sku_ids)
}

/// Commits every staged item whose SKU details are in, and every page (in order) that has
/// nothing left waiting (a full pass: see [`commit_parking`]).
fn commit_ready(
    ctx: &Ctx,
    staged: &mut VecDeque<StagedPage>,
    batcher: &mut SkuBatcher,
) -> Result<(), SyncError> {
    if ctx.persist_windows {
        return commit_parking(ctx, staged, batcher);
    }
    // Pages behind the front: their ready items go now, without the page's mark.
    for page in staged.iter_mut().skip(1) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut page.items).into_iter().partition(|i| ready(batcher, i));
        page.items = later;
        if !now.is_empty() {
            commit(ctx, StagedPage { items: now, ..StagedPage::default() }, batcher)?;
        }
    }
    while let Some(front) = staged.front_mut() {
        if front.items.iter().all(|i| ready(batcher, i)) {
            if let Some(s) = staged.pop_front() {
                commit(ctx, s, batcher)?;
            }
            continue;
        }
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut front.items).into_iter().partition(|i| ready(batcher, i));
        front.items = later;
        if !now.is_empty() {
            commit(ctx, StagedPage { items: now, ..StagedPage::default() }, batcher)?;
        }
        break;
    }
    Ok(())
}

/// A full pass commits each page as soon as it is read, in page order: its items whose
/// details are in, its place in the window, and, in the same transaction, the items still
/// waiting for a SKU batch parked (their listing, in the store's `parked` tree). A batch of
/// 20 ids fills across pages, and where few items need details (a re-read shop) one waiting
/// item used to hold every page read after it; a stop (the quota, a kill) then cost all of
/// them again (measured: 43 pages of one millisecond's extra read, listed twice). Now a stop
/// costs at most the page in hand; the parked items' details are fetched first by the next
/// session ([`unpark`]). An incremental pass keeps its pages staged instead: its watermark
/// may not pass an item that is not stored, and it has no pass to park them for.
///
/// Placing a page only once its batches due were fetched parks fewer items (a first copy ran
/// at 97 µs of CPU an item against 130), but a SIGKILL between those batches then lists each
/// window's page in hand again: 1.12× the lower bound over thirty kills against 1.06×. Calls
/// are what a user pays for; CPU at the platform's pace is not (measured in BENCHMARKS.md).
fn commit_parking(
    ctx: &Ctx,
    staged: &mut VecDeque<StagedPage>,
    batcher: &mut SkuBatcher,
) -> Result<(), SyncError> {
    for page in staged.iter_mut() {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut page.items).into_iter().partition(|i| ready(batcher, i));
        if page.parked {
            page.items = later;
            if !now.is_empty() {
                // `earlier` goes along: an item parked by an earlier session whose SKUs are
                // gone is not stored (see `commit`).
                let part =
                    StagedPage { items: now, parked: true, earlier: page.earlier, ..StagedPage::default() };
                commit(ctx, part, batcher)?;
            }
            continue;
        }
        let mut mark = page.mark.take().unwrap_or_default();
        mark.park = later
            .iter()
            .map(|i| Parked { item: i.0.item.clone(), listing_md5: i.0.listing_md5.clone() })
            .collect();
        let first = StagedPage {
            items: now,
            gone: std::mem::take(&mut page.gone),
            watermark: page.watermark.take(),
            mark: Some(mark),
            read: page.read.take(),
            ..StagedPage::default()
        };
        commit(ctx, first, batcher)?;
        page.items = later;
        page.parked = true;
    }
    staged.retain(|p| !p.items.is_empty());
    Ok(())
}

/// Fetches the details of the items an earlier session of the open full pass parked, and
/// commits them (see [`commit_parking`]): one partial SKU batch or a few, where listing their
/// pages again would cost a call per page.
pub(super) async fn unpark(ctx: &Ctx, parked: Vec<Parked>) -> Result<(), SyncError> {
    if parked.is_empty() {
        return Ok(());
    }
    if ctx.engine.client.is_param2() {
        // param2 answers a SKU ask from the list the client holds in memory, which a restart
        // empties: an item parked before (by an older build, or on the seed gateway) is
        // fetched again whole, one call each, and its listings leave the parked tree.
        let unpark: Vec<String> = parked.into_iter().map(|p| p.item.item_id).collect();
        let mut ids = unpark.clone();
        ids.sort();
        ids.dedup();
        tracing::info!(shop = %ctx.shop, items = ids.len(), "fetching again the items parked by an earlier session");
        ctx.engine.refetch(ctx.shop(), &ids, &ctx.stats).await?;
        let mark = PageMark { unpark, ..PageMark::default() };
        apply(&ctx.engine.store, ctx.shop(), &ctx.stats, &[], None, Some(&mark))?;
        return Ok(());
    }
    tracing::debug!(shop = %ctx.shop, items = parked.len(), "fetching the SKU details of items parked by the last session");
    let mut batcher = SkuBatcher::default();
    let mut items = Vec::with_capacity(parked.len());
    for p in parked {
        let stored = ctx.engine.store.item(ctx.shop(), &p.item.item_id)?;
        batcher.want(&p.item.sku_ids);
        items.push((NormalizedListing { item: p.item, listing_md5: p.listing_md5 }, stored, true));
    }
    let mut staged =
        VecDeque::from([StagedPage { items, parked: true, earlier: true, ..StagedPage::default() }]);
    fetch_due(ctx, &mut staged, &mut batcher, true).await
}

fn commit(ctx: &Ctx, page: StagedPage, batcher: &mut SkuBatcher) -> Result<(), SyncError> {
    let mut writes = Vec::with_capacity(page.items.len());
    let mut forget = Vec::new();
    for id in &page.gone {
        match ctx.engine.store.item(ctx.shop(), id)? {
            Some(last) => writes.push(Write::Delete { last }),
            // Never stored, maybe parked by the open full pass: that listing is out of date.
            None => forget.push(id.clone()),
        }
    }
    let ids: Vec<String> = page.items.iter().map(|i| i.0.item.item_id.clone()).collect();
    let mut mark = page.mark;
    if page.parked {
        mark.get_or_insert_with(PageMark::default).unpark = ids.clone();
    }
    if !forget.is_empty() {
        mark.get_or_insert_with(PageMark::default).forget = forget;
    }
    if let Some(m) = mark.as_mut().filter(|_| ctx.persist_windows) {
        (m.calls, m.active_ms) = ctx.unaccounted();
    }
    let now = crate::clock::now_ms();
    for (l, stored, need) in page.items {
        // Taken whether or not the item is written: details are dropped once every item that
        // asked for them has taken them (see `SkuBatcher::take`).
        let skus = need.then(|| batcher.take(&l.item.sku_ids));
        if page.parked {
            // Parked, maybe by an earlier session days ago: a newer read stored since wins
            // (an item's `modified_time` only moves forward), and one that deleted it took
            // its parked listing with it (see `Store::commit_page`).
            let now_stored = ctx.engine.store.item(ctx.shop(), &l.item.item_id)?;
            if now_stored.is_some_and(|s| s.item.modified_ms > l.item.modified_ms) {
                continue;
            }
        }
        let item = match skus {
            Some(skus) if page.earlier && skus.is_empty() => {
                // Listed by an earlier session, and the platform knows none of its SKUs now:
                // the item was removed or re-edited since (an edit moves its time past this
                // pass, where polls read it). Storing the old listing would keep a ghost.
                tracing::debug!(shop = %ctx.shop, item_id = %l.item.item_id, "a parked item's SKUs are gone; not stored");
                continue;
            }
            Some(skus) => with_skus(l.item, skus),
            // The variants are gone (or never were): no details to keep.
            None if l.item.sku_ids.is_empty() => l.item,
            None => {
                // Same listing (SKU ids included) as stored: the stored details still hold.
                let mut item = l.item;
                item.skus = stored.as_ref().map(|s| s.item.skus.clone()).unwrap_or_default();
                item
            }
        };
        let skus_ms = need.then_some(now);
        if let Some(w) = diff(&ctx.engine.store, ctx.shop(), item, l.listing_md5, skus_ms, ctx.mark)? {
            writes.push(w);
        }
    }
    apply(&ctx.engine.store, ctx.shop(), &ctx.stats, &writes, page.watermark, mark.as_ref())?;
    if let Some((at, read, next)) = &page.read {
        // After the page's items: a kill in between reads the page again, losing nothing.
        ctx.read_committed(*at, read, *next)?;
    }
    // Items read cleanly leave the quarantine.
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let released = ctx.engine.store.release(ctx.shop(), &ids)?;
    if released > 0 {
        tracing::info!(shop = %ctx.shop, released, "quarantined items read cleanly now");
    }
    Ok(())
}
