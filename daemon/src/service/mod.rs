//! `shopsync run`: the daemon.
//!
//! - `run.rs`: start-up (state, sinks, metrics, schedules), the main loop (signals, config
//!   changes, watchdog, state probe) and shutdown;
//! - `passes.rs`: running one pass of a shop on the accounts it may use, the passes due at
//!   start, and resuming full passes left open (quota, shutdown, crash);
//! - `jobs.rs`: the cron jobs of a config;
//! - `planning.rs`: the budget planner's tick (snapshot, plan, start);
//! - `control.rs`: the answers to the CLI's requests on the control socket;
//! - `reload.rs`: debounce → validate → diff → apply a changed config, or keep the old one;
//! - `gauges.rs`: the metrics read from the state at scrape time;
//! - `shared.rs`: what every job shares (store, clients, settings, per-shop locks);
//! - `systemd.rs`: sd_notify.

mod control;
mod gauges;
mod jobs;
mod passes;
mod planning;
mod reload;
mod run;
mod shared;
mod systemd;

pub use jobs::check_jobs;
pub use run::run;
