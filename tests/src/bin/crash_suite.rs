//! `crash-suite [ITEMS] [KILLS] [SEED] [--markdown]`: the crash suite as a command (see
//! `shopsync_e2e::crash`); prints its figures and exits 1 when anything was lost or wrong.

use shopsync_e2e::crash::{run, CrashOptions};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let opts = CrashOptions {
        items: nums.first().copied().unwrap_or(20_000),
        kills: nums.get(1).copied().unwrap_or(50) as u32,
        seed: nums.get(2).copied().unwrap_or(7),
        max_run: Duration::from_millis(3_000),
    };
    let report = run(&opts);
    let intro = format!(
        "`crash-suite {} {} {}`: one shop of {} items (contract quirks and injected faults on), \
         `shopsync run` delivering to JSONL and PostgreSQL, killed with SIGKILL after a random \
         0.1–{:.0} s in each of {} runs, the catalogue mutated between runs; then one run left to finish.",
        opts.items,
        opts.kills,
        opts.seed,
        opts.items,
        opts.max_run.as_secs_f64(),
        opts.kills
    );
    let markdown = args.iter().any(|a| a == "--markdown");
    shopsync_e2e::print_figures(
        markdown,
        "Crash safety: SIGKILL at random instants",
        &intro,
        &report.lines(),
    );
    if !report.ok() {
        eprintln!("crash suite FAILED: something was lost or is wrong");
        std::process::exit(1);
    }
}
