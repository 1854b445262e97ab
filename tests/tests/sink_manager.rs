//! Sinks added, removed and reconfigured at run time: a removed sink's cursor is kept, so
//! re-adding it resumes exactly where it stopped; the outbox is collected only past what
//! every sink still owed an event has seen.

use shopsync::config::{SinkSettings, SinkStart};
use shopsync::sinks::{DeliveryOptions, SinkManager};
use shopsync::state::Store;
use shopsync_e2e::{fill_outbox, plugin_dir};
use std::time::Duration;

fn jsonl(name: &str, dir: &std::path::Path) -> SinkSettings {
    SinkSettings {
        name: name.into(),
        plugin: "jsonl".into(),
        start: SinkStart::Earliest,
        delivery: DeliveryOptions { batch_size: 100, ..Default::default() },
        config: serde_json::json!({"path": dir.join(format!("{name}.jsonl"))}),
    }
}

fn lines(dir: &std::path::Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_change_at_run_time_without_losing_or_repeating_events() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    plugin_dir(&plugins);
    let store = Store::open(&dir.path().join("state"), 8 << 20).unwrap();
    let out = dir.path().join("out");
    let shop = "6000000000000001";
    let mut m =
        SinkManager::new(store.clone(), plugins, Duration::from_millis(20), Duration::from_secs(3600));

    fill_outbox(&store, shop, 0, 300);
    assert!(m.apply(&[jsonl("a", &out), jsonl("b", &out)]).await.unwrap().is_empty());
    until("both sinks to deliver 300", || lines(&out, "a").len() == 300 && lines(&out, "b").len() == 300)
        .await;

    // b leaves; a keeps going; the outbox keeps what b has not seen.
    m.apply(&[jsonl("a", &out)]).await.unwrap();
    fill_outbox(&store, shop, 300, 200);
    until("a to deliver 500", || lines(&out, "a").len() == 500).await;
    assert_eq!(lines(&out, "b").len(), 300);
    m.collect_outbox().unwrap();
    assert_eq!(store.outbox_len(), 200, "b's retained cursor holds the 200 events it has not seen");

    // b comes back: exactly the 200 it missed, no repeats.
    m.apply(&[jsonl("a", &out), jsonl("b", &out)]).await.unwrap();
    until("b to catch up", || lines(&out, "b").len() == 500).await;
    let b = lines(&out, "b");
    let unique: std::collections::BTreeSet<_> = b.iter().collect();
    assert_eq!(unique.len(), 500, "no event delivered twice to b");

    // Reconfiguring a sink (new file) restarts it on its cursor.
    let mut a2 = jsonl("a", &out);
    a2.config = serde_json::json!({"path": out.join("a2.jsonl")});
    m.apply(&[a2, jsonl("b", &out)]).await.unwrap();
    fill_outbox(&store, shop, 500, 50);
    until("a2 to get the new events", || lines(&out, "a2").len() == 50).await;

    // A sink whose plugin is missing is reported, the others keep running.
    let mut ghost = jsonl("ghost", &out);
    ghost.plugin = "no-such-plugin".into();
    let before = store.outbox_len();
    let failed = m.apply(&[jsonl("b", &out), ghost]).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].1.to_string().contains("no library"), "{}", failed[0].1);
    m.collect_outbox().unwrap();
    assert_eq!(store.outbox_len(), before, "the ghost sink's cursor (at 0) still holds the outbox");

    // A library replaced on disk after it was loaded is never reloaded in place. (Replaced
    // as operators must: a new file renamed over the old one. Writing into a mapped library
    // in place corrupts the running code; `cp` does that, `install` and `mv` do not.)
    let lib = dir.path().join("plugins/libshopsync_sink_jsonl.so");
    let mut bytes = std::fs::read(&lib).unwrap();
    bytes.extend_from_slice(b"changed");
    let fresh = dir.path().join("plugins/.new.so");
    std::fs::write(&fresh, bytes).unwrap();
    std::fs::rename(&fresh, &lib).unwrap();
    let mut b2 = jsonl("b", &out);
    b2.delivery.batch_size = 7;
    let failed = m.apply(&[b2]).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].1.to_string().contains("restart shopsync"), "{}", failed[0].1);
    m.shutdown().await;
}
