//! The crash and storm suites at the sizes issue 6 names (the same code the `crash-suite` and
//! `storm-suite` commands run): 20,000 items and 50 SIGKILLs; a 4,000-item storm with token
//! expiry and the quota running out mid-pass.

use shopsync_e2e::crash::{self, CrashOptions};
use shopsync_e2e::storm::{self, StormOptions};
use std::time::Duration;

#[test]
fn fifty_kills_and_sigterms_while_the_catalogue_churns_lose_nothing() {
    let opts = CrashOptions { items: 20_000, kills: 50, seed: 7, max_run: Duration::from_millis(3_000) };
    let r = crash::run(&opts);
    shopsync_e2e::print_figures(false, "crash suite", "", &r.lines());
    assert_eq!((r.kills, r.sigterms), (34, 16), "every third stop is a SIGTERM");
    assert!(r.churn_changes > 0, "the catalogue changed while the daemon ran");
    assert_eq!(r.state_failures, 0, "sled opened after every kill");
    assert_eq!(r.watermark_ahead, 0, "no watermark ahead of the events");
    assert_eq!((r.jsonl_lost, r.pg_lost), (0, 0), "no event lost");
    assert_eq!((r.jsonl_wrong, r.pg_wrong), (0, 0), "both sinks hold the final state");
    assert!(r.expected >= 20_000 && r.mutations > 0);
}

#[test]
fn an_api_storm_reaches_the_ground_truth() {
    let r = storm::run(&StormOptions { items: 4_000, quota: 1_000 });
    shopsync_e2e::print_figures(false, "storm suite", "", &r.lines());
    assert!(r.outcomes.get("5002").copied().unwrap_or(0) > 100, "it stormed: {:?}", r.outcomes);
    assert!(r.outcomes.get("15").copied().unwrap_or(0) >= 1, "the quota ran out mid-pass");
    assert!(r.quota_moves >= 1, "and the shop moved to another account");
    assert!(r.outcomes.get("27").copied().unwrap_or(0) >= 1, "tokens expired mid-pass");
    assert_eq!((r.wrong_after_full, r.wrong_after_incremental), (0, 0), "the end state is the truth");
    assert_eq!(r.lost_events, 0);
}
