//! The shipped alert rules pass `promtool check rules`, and use only metrics the daemon
//! declares.

use shopsync_e2e::{metric_names, promtool, text};
use std::path::Path;
use std::process::Command;

#[test]
fn alert_rules_are_valid_and_use_declared_metrics() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/alerts.yml");
    let out = Command::new(promtool()).args(["check", "rules"]).arg(&rules).output().expect("promtool runs");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let declared =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../daemon/src/metrics/mod.rs"))
            .unwrap();
    for name in metric_names(&std::fs::read_to_string(&rules).unwrap()) {
        assert!(
            declared.contains(&format!("\"{name}\"")),
            "alert rule uses {name}, which the daemon does not declare"
        );
    }
}
