//! `bench-budget [SHOPS] [DAYS] [DAY_SECS] [SEED] [--markdown]`: the daily call budget under
//! the planner ("auto") and under fixed crons, side by side on identical simulators. See
//! `shopsync_e2e::budget` for what is measured and how.

use shopsync_e2e::budget::{run, BudgetConfig};
use shopsync_e2e::print_figures;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let d = BudgetConfig::default();
    let cfg = BudgetConfig {
        shops: nums.first().map_or(d.shops, |&n| n as usize),
        days: nums.get(1).map_or(d.days, |&n| n as u32),
        day_secs: nums.get(2).copied().unwrap_or(d.day_secs),
        seed: nums.get(3).copied().unwrap_or(d.seed),
        ..d
    };
    let report = run(&cfg);
    let intro = format!(
        "{} shops of heavy-tailed sizes with change rates from one a week to 300 a day (silent \
         stock/sales edits, creations, delistings and removals included), 3 accounts of 3,000 \
         calls a quota day, {} quota days of {} s; the budget planner and fixed crons (every \
         second = 24 scaled minutes, full passes daily) on identical simulators at once. \
         Staleness is from a change on the simulator to the first event of its item committed \
         after it, in scaled hours; a change never seen counts until the end of the run.",
        cfg.shops, cfg.days, cfg.day_secs
    );
    print_figures(
        markdown,
        "Budget: the planner against fixed crons (`bench-budget`)",
        &intro,
        &report.rows(),
    );
}
