//! The PostgreSQL and MariaDB sinks against real servers on 127.0.0.1 (tests/run.sh starts
//! or installs them): after a full and an incremental pass the `items` tables equal the
//! simulator's ground truth, and delivering every batch twice more changes nothing.

use shopsync_e2e::{plugin_dir, sh, text, Setup, SimProc};
use std::collections::BTreeMap;

fn pg(db: &str, sql: &str) -> String {
    sh(&format!("psql -h 127.0.0.1 -U postgres -d {db} -tA -F '|' -c \"{sql}\""))
}

fn my(db: &str, sql: &str) -> String {
    sh(&format!("mysql -h 127.0.0.1 -u root -N -B {db} -e \"{sql}\""))
}

fn rows(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(['|', '\t']))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn postgres_and_mariadb_hold_the_ground_truth_and_redelivery_changes_nothing() {
    let db = format!("shopsync_e2e_{}", std::process::id());
    sh(&format!("psql -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS {db}' -c 'CREATE DATABASE {db}'"));
    sh(&format!("mysql -h 127.0.0.1 -u root -e 'DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4'"));

    // No churn: the tables are compared with the truth.
    let sim = SimProc::start(&[
        "--shops",
        "1",
        "--items",
        "1200",
        "--rate-limit",
        "500",
        "--hang-ms",
        "2000",
        "--churn",
        "0",
    ]);
    let member = sim.admin_get("/_sim/shops")[0]["member_id"].as_str().unwrap().to_string();
    let sinks = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| {
                let (plugin, url) = if n.starts_with("pg") {
                    ("postgres", format!("host=127.0.0.1 user=postgres dbname={db}"))
                } else {
                    ("mysql", format!("mysql://root@127.0.0.1:3306/{db}"))
                };
                format!("[[sinks]]\nname = \"{n}\"\nplugin = \"{plugin}\"\nstart = \"earliest\"\nbatch_size = 300\nconfig = {{ url = \"{url}\" }}\n")
            })
            .collect()
    };
    let base = format!(
        "[daemon]\nstate_dir = \"@DIR@/state\"\nplugin_dir = \"@DIR@/plugins\"\n[api]\nbase_url = \"{}\"\nread_timeout = \"1s\"\nmax_attempts = 20\n\
         [pacing]\nsuccess_interval = \"0ms\"\nfailure_interval = \"20ms\"\nmax_calls_per_sec = 400\n\
         [[accounts]]\nname = \"main\"\napp_key = \"10000001\"\napp_secret_file = \"@DIR@/secret\"\n[[shops]]\nmember_id = \"{member}\"\n",
        sim.gateway()
    );
    let setup = Setup::new(&(base.clone() + &sinks(&["pg", "my"])));
    std::fs::write(setup.path().join("secret"), "sim-secret-1").unwrap();
    plugin_dir(&setup.path().join("plugins"));

    let run = |args: &[&str]| {
        let out = setup.shopsync(args);
        assert!(out.status.success(), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    };
    run(&["sync", "--config", "@CONFIG@"]);
    run(&["deliver", "--config", "@CONFIG@"]);
    for op in [
        r#"{"op": "update", "count": 20}"#,
        r#"{"op": "create", "count": 10}"#,
        r#"{"op": "delist", "count": 10}"#,
        r#"{"op": "touch", "count": 10}"#,
        r#"{"op": "remove", "count": 5}"#,
    ] {
        sim.admin_post(&format!("/_sim/shops/{member}/mutate"), op);
    }
    run(&["sync", "--config", "@CONFIG@"]);
    run(&["sync", "--config", "@CONFIG@", "--full"]);
    run(&["deliver", "--config", "@CONFIG@"]);

    let truth = sim.admin_get(&format!("/_sim/shops/{member}/truth"));
    let want: BTreeMap<String, String> = truth["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (i["item_id"].as_str().unwrap().to_string(), format!("{}:{}", i["stock"], i["modified_time"]))
        })
        .collect();
    let items_sql =
        "SELECT item_id, CONCAT(stock, ':', modified_ms) FROM items WHERE NOT deleted ORDER BY item_id";
    let pg_items = rows(&pg(&db, items_sql));
    let my_items = rows(&my(&db, items_sql));
    assert_eq!(pg_items.len(), want.len());
    assert_eq!(pg_items, want, "postgres items equal the ground truth");
    assert_eq!(my_items, want, "mariadb items equal the ground truth");
    let title =
        pg(&db, &format!("SELECT title FROM items WHERE item_id = '{}'", want.keys().next().unwrap()));
    let my_title =
        my(&db, &format!("SELECT title FROM items WHERE item_id = '{}'", want.keys().next().unwrap()));
    assert_eq!(title, my_title, "utf8mb4 keeps Chinese titles intact");
    assert!(title.chars().any(|c| c > '\u{3000}'), "{title}");

    // Every batch delivered twice more, through two more sinks per database starting at
    // the oldest event: nothing changes.
    let snapshot = |_: ()| {
        (
            pg(&db, "SELECT count(*), md5(string_agg(item_id || last_seq || md5 || deleted::text, ',' ORDER BY item_id)) FROM items"),
            pg(&db, "SELECT count(*) FROM item_changes"),
            my(&db, "SELECT count(*), md5(group_concat(item_id, last_seq, md5, deleted ORDER BY item_id SEPARATOR ',')) FROM items"),
            my(&db, "SELECT count(*) FROM item_changes"),
        )
    };
    let before = snapshot(());
    std::fs::write(
        &setup.config,
        (base + &sinks(&["pg", "my", "pg2", "my2", "pg3", "my3"]))
            .replace("@DIR@", &setup.path().display().to_string()),
    )
    .unwrap();
    run(&["deliver", "--config", "@CONFIG@"]);
    assert_eq!(snapshot(()), before, "redelivering every batch twice changed nothing");

    sh(&format!("psql -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS {db}'"));
    sh(&format!("mysql -h 127.0.0.1 -u root -e 'DROP DATABASE IF EXISTS {db}'"));
}
