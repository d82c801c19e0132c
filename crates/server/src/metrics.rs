//! `/metrics` (OpenMetrics text, on the admin listener only): request counts by method, route
//! and status, request time, and domain counters.
//!
//! Every label comes from a fixed set, so no client can grow the number of series: the method
//! is one of eight values, the route is the matched route template (never the raw path, which
//! would put user IDs in label values), and the status is one the service itself answers.

use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The domain counters: the name callers pass to [`Metrics::count`] and its help text. Each is
/// exposed as `switchboard_<name>`.
const DOMAIN: &[(&str, &str)] = &[
    ("accounts_created_total", "Accounts registered."),
    (
        "sms_codes_issued_total",
        "SMS codes issued, each then delivered in the background (login and recovery codes \
         only to numbers with an account): counted alike for every number.",
    ),
    (
        "sms_delivery_failures_total",
        "SMS deliveries the gateway refused or could not take.",
    ),
    (
        "rate_limited_total",
        "Requests refused by a per-account budget (messages, contact requests, group fan-out).",
    ),
    (
        "sign_ins_total",
        "Successful sign-ins (password or SMS code).",
    ),
    ("sign_in_failures_total", "Failed sign-in attempts."),
    ("messages_sent_total", "Messages accepted for delivery."),
    (
        "cluster_notify_total",
        "Wake-up NOTIFY statements sent to the other nodes (PostgreSQL).",
    ),
];

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    /// In the order of [`DOMAIN`].
    domain: Vec<Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: MethodLabel,
    route: String,
    status: u16,
}

/// The request method as a label: the common ones by name, anything else as `other`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl MethodLabel {
    fn of(method: &Method) -> Self {
        match *method {
            Method::GET => Self::Get,
            Method::HEAD => Self::Head,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::PATCH => Self::Patch,
            Method::DELETE => Self::Delete,
            Method::OPTIONS => Self::Options,
            _ => Self::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "other",
        }
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // prometheus-client adds the `_total` of a counter itself.
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status.",
            requests.clone(),
        );
        // 1 ms to about 16 s: from a cached read to a slow password hash under load.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "http_request_duration_seconds",
            "Time spent answering requests.",
            duration.clone(),
        );
        let domain_registry = registry.sub_registry_with_prefix("switchboard");
        let domain = DOMAIN
            .iter()
            .map(|(name, help)| {
                let counter = Counter::default();
                domain_registry.register(
                    name.strip_suffix("_total").unwrap_or(name),
                    *help,
                    counter.clone(),
                );
                counter
            })
            .collect();
        Self {
            registry,
            requests,
            duration,
            domain,
        }
    }
}

impl Metrics {
    /// Counts one event of a domain counter, by its exposed name less the `switchboard_`
    /// prefix (e.g. `accounts_created_total`).
    pub fn count(&self, name: &'static str) {
        match DOMAIN.iter().position(|(known, _)| *known == name) {
            Some(i) => {
                if let Some(counter) = self.domain.get(i) {
                    counter.inc();
                }
            }
            // A new counter is added to `DOMAIN`; a test checks that every name counted in
            // the source is there, so this is a typo that slipped past it.
            None => tracing::warn!(name, "not a known metric; not counted"),
        }
    }

    pub(crate) fn request(&self, method: &Method, route: String, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: MethodLabel::of(method),
                route,
                status,
            })
            .inc();
        self.duration.observe(secs);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn series(m: &Metrics) -> Vec<String> {
        m.render()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
            .collect()
    }

    #[test]
    fn names_and_labels_are_the_documented_ones() {
        let m = Metrics::default();
        m.request(&Method::POST, "/v1/accounts".into(), 201, 0.01);
        m.count("accounts_created_total");
        let text = m.render().unwrap();
        assert!(
            text.contains(
                r#"http_requests_total{method="POST",route="/v1/accounts",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("switchboard_accounts_created_total 1"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "a complete exposition: {text}");
    }

    #[test]
    fn unknown_methods_share_one_label_value() {
        let m = Metrics::default();
        for name in ["FOO", "BREW", "PROPFIND", "X-ANYTHING", "CONNECT", "TRACE"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            m.request(&method, "unmatched".into(), 404, 0.0);
        }
        assert_eq!(
            series(&m),
            vec![r#"http_requests_total{method="other",route="unmatched",status="404"}"#],
            "every method outside the fixed set is `other`"
        );
    }

    #[test]
    fn an_unknown_domain_counter_creates_nothing() {
        let m = Metrics::default();
        let before = m.render().unwrap();
        m.count("no_such_thing_total");
        assert_eq!(m.render().unwrap(), before);
    }

    /// Every name this crate's source passes to `Metrics::count` is a registered counter: an
    /// unregistered one would be dropped (with a warning) at run time.
    #[test]
    fn every_counted_name_is_registered() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut seen = 0;
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for call in text.split("metrics.count(\"").skip(1) {
                    let name = call.split('"').next().unwrap();
                    assert!(
                        DOMAIN.iter().any(|(known, _)| *known == name),
                        "{}: metrics.count({name:?}) is not in DOMAIN",
                        path.display()
                    );
                    seen += 1;
                }
            }
        }
        assert!(
            seen >= DOMAIN.len(),
            "the scan found the callers ({seen} calls)"
        );
    }
}
