//! `storm-suite [ITEMS] [QUOTA] [--markdown]`: the API storm suite as a command (see
//! `shopsync_e2e::storm`); prints its figures and exits 1 when the end state is wrong.

use shopsync_e2e::storm::{run, StormOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let opts = StormOptions {
        items: nums.first().copied().unwrap_or(4_000),
        quota: nums.get(1).copied().unwrap_or(1_000),
    };
    let report = run(&opts);
    let intro = format!(
        "`storm-suite {} {}`: one shop of {} items; the platform answers 30% of calls busy, 4% \
         HTML, 4% truncated JSON, 1% hangs (1.5 s), 4% injected 429s, limits each key to 60 calls/s \
         while the daemon may send 90, expires every OAuth token twice by hand \
         mid-pass, and gives each key {} calls a day, so the quota runs out mid-pass.",
        opts.items, opts.quota, opts.items, opts.quota
    );
    let markdown = args.iter().any(|a| a == "--markdown");
    shopsync_e2e::print_figures(markdown, "Faults: an API storm", &intro, &report.lines());
    if !report.ok() {
        eprintln!("storm suite FAILED: the end state is wrong or something was lost");
        std::process::exit(1);
    }
}
