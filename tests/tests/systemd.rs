//! The shipped unit: `systemd-analyze security --offline=yes` scores it 2.0 or lower, and
//! `systemd-analyze verify` is clean (with the binary path pointed at the built one).

use shopsync_e2e::{bin, text};
use std::path::Path;
use std::process::Command;

fn unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/shopsync.service")
}

#[test]
fn unit_exposure_is_ok() {
    let out =
        Command::new("systemd-analyze").args(["security", "--offline=yes"]).arg(unit()).output().unwrap();
    let report = text(&out.stdout) + &text(&out.stderr);
    let line =
        report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{report}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{report}");
}

#[test]
fn unit_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(unit())
        .unwrap()
        .replace("/usr/bin/shopsync", &bin("shopsync").display().to_string());
    let copy = dir.path().join("shopsync.service");
    std::fs::write(&copy, body).unwrap();
    let out = Command::new("systemd-analyze").args(["verify"]).arg(&copy).output().unwrap();
    let report = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success() && report.trim().is_empty(), "{report}");
}
