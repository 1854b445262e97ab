//! Query planning: windows of `modified_time`, optionally one category, and how a saturated
//! window is split.
//!
//! One query can never reach past 50 pages of 40 (the depth cap), a saturated query over
//! more than 30 days stalls, and bulk imports put thousands of items on one millisecond. So:
//! a window is sized from its first page's `total_results` (or a count call when it is too
//! wide to list safely); a saturated one is split in time, and a saturated single
//! millisecond is split by category, the only thing that reaches inside a tie.

/// 2001-09-09: the first 13-digit millisecond time. The gateway accepts only 13-digit times
/// and the platform holds nothing older (1688's open platform is far younger).
pub const PLATFORM_EPOCH_MS: i64 = 1_000_000_000_000;
/// Pages past this come back empty.
pub const DEPTH_CAP: u64 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `start <= modified_time`
    pub start: i64,
    /// `modified_time < end`
    pub end: i64,
    pub cid: Option<String>,
    /// Incremental passes move the watermark per page within this window (false inside a
    /// category split, whose pages are not in time order across categories).
    pub page_marks: bool,
    /// The watermark this window's completion allows.
    pub mark_on_done: Option<i64>,
}

impl Window {
    pub fn time(start: i64, end: i64) -> Window {
        Window { start, end, cid: None, page_marks: true, mark_on_done: Some(end) }
    }

    pub fn width(&self) -> i64 {
        self.end - self.start
    }
}

/// `[start, end)` cut into windows no wider than `slice_ms`, oldest first.
pub fn slices(start: i64, end: i64, slice_ms: i64) -> Vec<Window> {
    let mut out = Vec::new();
    let mut s = start;
    while s < end {
        let e = (s + slice_ms).min(end);
        out.push(Window::time(s, e));
        s = e;
    }
    out
}

/// Splits a saturated time window into pieces expected to hold about `target` items each
/// (at least two), oldest first. A one-millisecond window cannot be split in time.
pub fn split_time(w: &Window, total: u64, target: u64) -> Vec<Window> {
    let pieces = total.div_ceil(target.max(1)).max(2) as i64;
    let pieces = pieces.min(w.width()).max(1);
    let step = (w.width() + pieces - 1) / pieces;
    let mut out = Vec::new();
    let mut s = w.start;
    while s < w.end {
        let e = (s + step).min(w.end);
        out.push(Window {
            start: s,
            end: e,
            cid: w.cid.clone(),
            page_marks: w.page_marks,
            mark_on_done: Some(e),
        });
        s = e;
    }
    if !w.page_marks {
        // Inside a category split only the group's last window may move the watermark.
        for p in out.iter_mut() {
            p.mark_on_done = None;
        }
        if let Some(last) = out.last_mut() {
            last.mark_on_done = w.mark_on_done;
        }
    }
    out
}

/// Splits a saturated window by category: one window per category, the last one carrying
/// the watermark the whole group allows.
pub fn split_category(w: &Window, cids: &[String]) -> Vec<Window> {
    let mut out: Vec<Window> = cids
        .iter()
        .map(|c| Window {
            start: w.start,
            end: w.end,
            cid: Some(c.clone()),
            page_marks: false,
            mark_on_done: None,
        })
        .collect();
    if let Some(last) = out.last_mut() {
        last.mark_on_done = w.mark_on_done;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_range_without_gaps() {
        let s = slices(0, 100, 30);
        assert_eq!(
            s.iter().map(|w| (w.start, w.end)).collect::<Vec<_>>(),
            vec![(0, 30), (30, 60), (60, 90), (90, 100)]
        );
    }

    #[test]
    fn time_split_sizes_pieces_by_total() {
        let w = Window::time(0, 1_000);
        let parts = split_time(&w, 5_000, 1_600);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.first().map(|p| p.start), Some(0));
        assert_eq!(parts.last().map(|p| p.end), Some(1_000));
        assert!(parts.windows(2).all(|p| p[0].end == p[1].start));
        // Two milliseconds split into two single ones; never into empty pieces.
        assert_eq!(split_time(&Window::time(5, 7), 9_000, 1_600).len(), 2);
    }

    #[test]
    fn category_split_moves_the_watermark_only_at_the_end() {
        let w = Window::time(10, 11);
        let parts = split_category(&w, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(parts.iter().map(|p| p.mark_on_done).collect::<Vec<_>>(), vec![None, None, Some(11)]);
        assert!(parts.iter().all(|p| !p.page_marks));
    }
}
