//! Cron schedules (tokio-cron-scheduler, seconds resolution) for shops and watch lists.
//!
//! A shop left on the default schedules gets a jitter derived from its name, so a thousand
//! shops do not fire in the same second. A pass never starts while another pass of the same
//! shop runs: the late run is logged and counted, not queued. Cron strings are read in the
//! configured time zone (Asia/Shanghai by default: the platform's day).
//!
//! - `planner.rs`: the budget planner (how each quota day is split, when each shop on
//!   `"auto"` is polled or gets a full pass, and why);
//! - `rates.rs`: each shop's change rate and poll cost, learned from its passes;
//! - `demand.rs`: what the explicit crons cost a day;
//! - `estimate.rs`: when an open full pass should finish.

pub mod demand;
pub mod estimate;
pub mod planner;
pub mod rates;

use std::hash::{Hash, Hasher};

/// The default incremental schedule, every 15 minutes.
pub const DEFAULT_INCREMENTAL: &str = "0 */15 * * * *";
/// The default full schedule, nightly.
pub const DEFAULT_FULL: &str = "0 30 3 * * *";

fn spread(key: &str, salt: &str, n: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, salt).hash(&mut h);
    h.finish() % n
}

/// `expr`, or for a default schedule its jittered form: the same rhythm at a second (and,
/// for the incremental one, a minute) of its own.
pub fn jittered(expr: &str, key: &str) -> String {
    match expr {
        DEFAULT_INCREMENTAL => {
            format!("{} {}/15 * * * *", spread(key, "s", 60), spread(key, "m", 15))
        }
        DEFAULT_FULL => format!("{} {} 3 * * *", spread(key, "s", 60), 30 + spread(key, "m", 30)),
        other => other.to_string(),
    }
}

/// A cron job read in `tz`; building it is what validates the expression, so `check-config`
/// and the daemon agree on what is accepted.
pub fn job<F>(expr: &str, tz: chrono_tz::Tz, run: F) -> Result<tokio_cron_scheduler::Job, String>
where
    F: FnMut(
            uuid::Uuid,
            tokio_cron_scheduler::JobScheduler,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync
        + 'static,
{
    let mut job = tokio_cron_scheduler::Job::new_async_tz(expr, tz, run)
        .map_err(|e| format!("cron {expr:?} is not valid: {e}"))?;
    // The scheduler takes a cron that never fires ("0 0 0 30 2 *", a past year) without a
    // word, and the shop is then never synced: refuse it like an unreadable one.
    match job.job_data() {
        Ok(d) if d.next_tick != 0 => Ok(job),
        _ => Err(format!("cron {expr:?} never fires")),
    }
}

/// Checks that `expr` builds as a schedule.
pub fn check(expr: &str, tz: chrono_tz::Tz) -> Result<(), String> {
    job(expr, tz, |_, _| Box::pin(async {})).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cron_that_never_fires_is_refused() {
        let tz = chrono_tz::Asia::Shanghai;
        assert!(check("0 0 0 29 2 *", tz).is_ok(), "once in four years is still a schedule");
        for never in ["0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 * * * 1999"] {
            assert_eq!(check(never, tz), Err(format!("cron {never:?} never fires")));
        }
    }

    #[test]
    fn defaults_are_spread_and_custom_crons_kept() {
        assert_eq!(jittered("*/5 * * * * *", "a"), "*/5 * * * * *");
        let many: std::collections::BTreeSet<String> =
            (0..1000).map(|i| jittered(DEFAULT_INCREMENTAL, &format!("shop{i}"))).collect();
        assert!(many.len() > 500, "1000 shops share {} schedules", many.len());
        assert_eq!(jittered(DEFAULT_FULL, "x"), jittered(DEFAULT_FULL, "x"), "stable per shop");
    }

    #[test]
    fn crons_that_cannot_be_built_are_refused() {
        assert!(check("0 30 3 * * *", chrono_tz::Asia::Shanghai).is_ok());
        assert!(check("0 61 3 * * *", chrono_tz::Asia::Shanghai).is_err());
        assert!(check("every day", chrono_tz::UTC).is_err());
    }
}
