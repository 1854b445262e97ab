//! Every metric the daemon exports, declared in this one place, named
//! `shopsync_<subsystem>_<name>_<unit>[_total]`, with low-cardinality labels (accounts, shops,
//! sinks and methods come from the config; never item ids). `server.rs` serves them with
//! `/healthz` and `/readyz`.

mod server;

pub use server::{serve, Readiness};

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;

pub struct Metrics {
    pub registry: Registry,
    pub api_calls: IntCounterVec,
    pub api_latency: HistogramVec,
    pub pacing_interval: GaugeVec,
    pub quota_used: IntGaugeVec,
    pub quota_remaining: IntGaugeVec,
    pub authorization_expiry: GaugeVec,
    pub passes: IntCounterVec,
    pub pass_duration: HistogramVec,
    pub passes_skipped: IntCounterVec,
    pub watermark: GaugeVec,
    pub items: IntGaugeVec,
    pub items_quarantined: IntGaugeVec,
    pub items_unreachable: IntGaugeVec,
    pub completeness: GaugeVec,
    pub full_pass_windows: IntGaugeVec,
    pub full_pass_items: IntGaugeVec,
    pub full_pass_eta: GaugeVec,
    pub poll_interval: GaugeVec,
    pub polls_overdue: IntGaugeVec,
    pub planned_calls: IntCounterVec,
    pub events: IntCounterVec,
    pub list_pages_reread: IntCounterVec,
    pub sink_delivered: IntCounterVec,
    pub sink_errors: IntCounterVec,
    pub sink_dead_letters: IntCounterVec,
    pub sink_lag: IntGaugeVec,
    pub sink_healthy: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub scheduler_ticks: IntGauge,
    pub push_messages: IntCounterVec,
    pub push_refetch: IntCounterVec,
    pub push_backlog: IntGauge,
    pub push_pulled: IntCounterVec,
    pub follow_calls: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}
fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let c = GaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}
fn igauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let c = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}
fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(h.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

impl Metrics {
    /// Declares every metric. The names are fixed strings, so registration cannot fail at run
    /// time; a clash would be a programming error caught by the first test.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = igauge(&r, "shopsync_build_info", "Build information; always 1.", &["version"]);
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let ticks = IntGauge::new(
            "shopsync_scheduler_last_tick_timestamp_seconds",
            "When the scheduler loop last ticked.",
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        r.register(Box::new(ticks.clone())).unwrap_or_else(|e| panic!("metric: {e}"));
        let push_backlog =
            IntGauge::new("shopsync_push_backlog", "Change messages received and not yet handled.")
                .unwrap_or_else(|e| panic!("metric: {e}"));
        r.register(Box::new(push_backlog.clone())).unwrap_or_else(|e| panic!("metric: {e}"));
        Metrics {
            api_calls: counter(
                &r,
                "shopsync_api_calls_total",
                "Gateway calls by account, method and outcome.",
                &["account", "method", "outcome"],
            ),
            api_latency: histogram(
                &r,
                "shopsync_api_call_duration_seconds",
                "Gateway call latency.",
                &["method"],
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            pacing_interval: gauge(
                &r,
                "shopsync_pacing_interval_seconds",
                "The pacing interval most recently chosen.",
                &["account"],
            ),
            quota_used: igauge(
                &r,
                "shopsync_quota_used_calls",
                "Calls counted against today's quota.",
                &["account"],
            ),
            quota_remaining: igauge(
                &r,
                "shopsync_quota_remaining_calls",
                "Calls left in today's quota.",
                &["account"],
            ),
            authorization_expiry: gauge(
                &r,
                "shopsync_account_authorization_expiry_timestamp_seconds",
                "When each param2 OAuth account's authorization (its refresh token) ends; 0 when it has none.",
                &["account"],
            ),
            passes: counter(
                &r,
                "shopsync_passes_total",
                "Passes by shop, kind and result.",
                &["shop", "kind", "result"],
            ),
            pass_duration: histogram(
                &r,
                "shopsync_pass_duration_seconds",
                "Pass durations.",
                &["kind"],
                vec![1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0],
            ),
            passes_skipped: counter(
                &r,
                "shopsync_passes_skipped_total",
                "Scheduled passes not started, by reason.",
                &["shop", "reason"],
            ),
            watermark: gauge(
                &r,
                "shopsync_shop_watermark_timestamp_seconds",
                "Each shop's watermark.",
                &["shop"],
            ),
            items: igauge(&r, "shopsync_shop_items", "Items stored per shop.", &["shop"]),
            items_quarantined: igauge(
                &r,
                "shopsync_shop_items_quarantined",
                "Items the platform sent in a shape that could not be read; retried on every pass.",
                &["shop"],
            ),
            items_unreachable: igauge(
                &r,
                "shopsync_shop_items_unreachable",
                "Items no query of the platform reaches (category totals short of a window's, a category tie past the depth cap).",
                &["shop"],
            ),
            completeness: gauge(
                &r,
                "shopsync_shop_completeness_ratio",
                "Completeness of the last full pass: fetched/official, SKU share, price share.",
                &["shop", "measure"],
            ),
            full_pass_windows: igauge(
                &r,
                "shopsync_full_pass_windows",
                "Windows of the open full pass: done and total (total grows as windows split).",
                &["shop", "state"],
            ),
            full_pass_items: igauge(
                &r,
                "shopsync_full_pass_items",
                "Items the open full pass has seen, and the official count it aims at.",
                &["shop", "measure"],
            ),
            full_pass_eta: gauge(
                &r,
                "shopsync_full_pass_estimated_finish_timestamp_seconds",
                "When the open full pass is expected to finish, from its pace and the quota left.",
                &["shop"],
            ),
            poll_interval: gauge(
                &r,
                "shopsync_shop_poll_interval_seconds",
                "How often each shop is meant to be polled: the budget planner's target, or its cron's interval.",
                &["shop"],
            ),
            polls_overdue: igauge(
                &r,
                "shopsync_planner_polls_overdue",
                "Shops on incremental = \"auto\" whose poll is due but did not start at the planner's last tick, by why: running (a pass of the shop runs), allowance (the day's poll calls so far are spent), slots (max_passes are all busy).",
                &["reason"],
            ),
            planned_calls: counter(
                &r,
                "shopsync_planner_calls_total",
                "Calls spent by the passes the budget planner started, by kind: poll (incremental polls, first copies' included) or full (full-pass sessions).",
                &["kind"],
            ),
            events: counter(&r, "shopsync_events_total", "Change events emitted, by operation.", &["op"]),
            list_pages_reread: counter(
                &r,
                "shopsync_sync_list_pages_reread_total",
                "List pages read a second time because items left the window while it was read.",
                &[],
            ),
            sink_delivered: counter(
                &r,
                "shopsync_sink_delivered_events_total",
                "Events a sink accepted.",
                &["sink"],
            ),
            sink_errors: counter(&r, "shopsync_sink_errors_total", "Failed deliveries.", &["sink"]),
            sink_dead_letters: counter(
                &r,
                "shopsync_sink_dead_letter_events_total",
                "Events moved to a sink's dead-letter queue.",
                &["sink"],
            ),
            sink_lag: igauge(
                &r,
                "shopsync_sink_lag_events",
                "Events a sink is behind the outbox.",
                &["sink"],
            ),
            sink_healthy: igauge(
                &r,
                "shopsync_sink_healthy",
                "1 when the sink's last delivery worked.",
                &["sink"],
            ),
            reloads: counter(&r, "shopsync_config_reloads_total", "Config reloads by result.", &["result"]),
            scheduler_ticks: ticks,
            push_messages: counter(
                &r,
                "shopsync_push_messages_total",
                "Change messages by what became of them: stored, duplicate (msgId seen before), refused (unsigned or mis-signed), unknown_shop, ignored (a topic not acted on).",
                &["result"],
            ),
            push_refetch: counter(
                &r,
                "shopsync_push_refetch_total",
                "Offers fetched again because a change message named them.",
                &[],
            ),
            push_backlog,
            push_pulled: counter(
                &r,
                "shopsync_push_pulled_total",
                "Change messages the platform could not deliver, pulled with push.cursor.messageList.",
                &[],
            ),
            follow_calls: counter(
                &r,
                "shopsync_follow_calls_total",
                "alibaba.product.follow calls by result: followed, refused (the platform said no for this offer), failed.",
                &["result"],
            ),
            registry: r,
        }
        .init()
    }

    /// Creates the label sets that exist from the start, so dashboards and alerts see zeros
    /// rather than no data.
    fn init(self) -> Metrics {
        for r in ["ok", "invalid", "error"] {
            self.reloads.with_label_values(&[r]);
        }
        for op in ["create", "update", "delete"] {
            self.events.with_label_values(&[op]);
        }
        self.list_pages_reread.with_label_values::<&str>(&[]);
        for r in ["stored", "duplicate", "refused", "unknown_shop", "ignored"] {
            self.push_messages.with_label_values(&[r]);
        }
        self.push_refetch.with_label_values::<&str>(&[]);
        self.push_pulled.with_label_values::<&str>(&[]);
        for r in ["followed", "refused", "failed"] {
            self.follow_calls.with_label_values(&[r]);
        }
        self
    }

    /// Drops every series of the shop `shop` (a member id, or the label a shop had before its
    /// URL was resolved): a shop removed from the config must not keep its last watermark,
    /// which would make the staleness alert fire for ever. Every per-shop vec is listed here,
    /// so a new one is forgotten too by adding it once.
    pub fn forget_shop(&self, shop: &str) {
        forget(&self.passes, "shop", shop);
        forget(&self.passes_skipped, "shop", shop);
        forget(&self.watermark, "shop", shop);
        forget(&self.items, "shop", shop);
        forget(&self.items_quarantined, "shop", shop);
        forget(&self.items_unreachable, "shop", shop);
        forget(&self.completeness, "shop", shop);
        forget(&self.full_pass_windows, "shop", shop);
        forget(&self.full_pass_items, "shop", shop);
        forget(&self.full_pass_eta, "shop", shop);
        forget(&self.poll_interval, "shop", shop);
    }

    /// Drops every series of the sink `sink` (removed from the config).
    pub fn forget_sink(&self, sink: &str) {
        forget(&self.sink_delivered, "sink", sink);
        forget(&self.sink_errors, "sink", sink);
        forget(&self.sink_dead_letters, "sink", sink);
        forget(&self.sink_lag, "sink", sink);
        forget(&self.sink_healthy, "sink", sink);
    }

    /// Drops every series of the account `account` (removed from the config).
    pub fn forget_account(&self, account: &str) {
        forget(&self.api_calls, "account", account);
        forget(&self.pacing_interval, "account", account);
        forget(&self.quota_used, "account", account);
        forget(&self.quota_remaining, "account", account);
        forget(&self.authorization_expiry, "account", account);
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Removes every series of `vec` whose label `name` is `value`, whatever its other labels
/// (the crate only removes exact label sets, and outcomes or kinds are open-ended).
fn forget<T: MetricVecBuilder>(vec: &MetricVec<T>, name: &str, value: &str) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> =
                metric.get_label().iter().map(|l| (l.name(), l.value())).collect();
            if labels.get(name) == Some(&value) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_a_shop_drops_all_its_series_and_no_other() {
        let m = Metrics::new();
        for shop in ["111", "222"] {
            m.watermark.with_label_values(&[shop]).set(1.0);
            m.passes.with_label_values(&[shop, "full", "ok"]).inc();
            m.passes.with_label_values(&[shop, "incremental", "error"]).inc();
            m.completeness.with_label_values(&[shop, "sku"]).set(1.0);
        }
        m.sink_lag.with_label_values(&["events"]).set(3);
        m.forget_shop("111");
        m.forget_sink("events");
        let text = m.render();
        assert!(!text.contains("\"111\""), "{text}");
        assert!(!text.contains("sink=\"events\""), "{text}");
        assert_eq!(text.matches("shop=\"222\"").count(), 4, "{text}");
    }
}
