//! The `sim1688` binary as a user starts it: it prints where it listens, its shops and
//! accounts, and answers the admin API over loopback.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_shops_and_serves_admin_api() {
    let child = Command::new(env!("CARGO_BIN_EXE_sim1688"))
        // No churn: the test counts the items left after a mutation.
        .args(["--listen", "127.0.0.1:0", "--shops", "2", "--items", "500", "--seed", "3", "--churn", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sim1688 starts");
    let mut child = Kill(child);
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let base = first.strip_prefix("listening ").expect("first line names the address").to_string();
    let printed: Vec<String> = lines.by_ref().take(9).map_while(Result::ok).collect();
    assert_eq!(printed.iter().filter(|l| l.starts_with("shop ")).count(), 2, "{printed:?}");
    assert!(printed.iter().any(|l| l.contains("app_key=10000001")));

    let http = reqwest::Client::new();
    let shops: serde_json::Value =
        http.get(format!("{base}/_sim/shops")).send().await.unwrap().json().await.unwrap();
    let shops = shops.as_array().unwrap();
    assert_eq!(shops.len(), 2);
    assert_eq!(shops[0]["member_id"].as_str().unwrap().len(), 16);
    assert_eq!(shops[0]["items"], 500);
    let accounts: serde_json::Value =
        http.get(format!("{base}/_sim/accounts")).send().await.unwrap().json().await.unwrap();
    assert!(accounts.as_array().unwrap().iter().any(|a| a["kind"] == "test"));

    // Mutations and the ground truth through the admin API.
    let member = shops[0]["member_id"].as_str().unwrap();
    let done: serde_json::Value = http
        .post(format!("{base}/_sim/shops/{member}/mutate"))
        .json(&serde_json::json!({"op": "delist", "count": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["item_ids"].as_array().unwrap().len(), 5);
    let truth: serde_json::Value =
        http.get(format!("{base}/_sim/shops/{member}/truth")).send().await.unwrap().json().await.unwrap();
    assert_eq!(truth["count"], 495);
    let bad = http.put(format!("{base}/_sim/faults")).body(r#"{"bussy": 1}"#).send().await.unwrap();
    assert_eq!(bad.status(), 400, "unknown fault names are refused");
}
