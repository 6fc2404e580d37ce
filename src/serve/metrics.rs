//! `/metrics`: the governor's counters and the loads' statistics in the OpenMetrics text
//! format, encoded by `prometheus-client` from a snapshot taken at each scrape.
use super::state::AppState;
use crate::bitrix::GovernorSnapshot;
use crate::pipeline::stats::EntityStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The content type of [`metrics`]' text.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition text of everything `serve` knows right now.
pub(super) fn metrics(state: &AppState) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot {
        governor: state.client.governor().snapshot(),
        entities: state.stats.entities(),
    }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Snapshot {
    governor: GovernorSnapshot,
    entities: Vec<EntityStats>,
}

/// One metric with a value per label set (an empty label list for a plain metric).
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: Vec<(Vec<(&str, String)>, M)>,
) -> Result<(), std::fmt::Error> {
    let Some((_, first)) = series.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    match series.as_slice() {
        [(labels, value)] if labels.is_empty() => value.encode(metric),
        _ => {
            for (labels, value) in &series {
                value.encode(metric.encode_family(labels)?)?;
            }
            Ok(())
        }
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.governor.counters;
        let counter = |v: u64| ConstCounter::new(v);
        family(
            &mut e,
            "b24ch_bitrix_requests",
            "HTTP requests sent to Bitrix24.",
            vec![(vec![], counter(c.requests))],
        )?;
        family(
            &mut e,
            "b24ch_bitrix_responses_limited",
            "Limit answers from Bitrix24 by HTTP status.",
            vec![
                (vec![("status", "503".into())], counter(c.http_503)),
                (vec![("status", "429".into())], counter(c.http_429)),
            ],
        )?;
        family(
            &mut e,
            "b24ch_bitrix_retries",
            "Retried Bitrix24 requests.",
            vec![(vec![], counter(c.retries))],
        )?;
        family(
            &mut e,
            "b24ch_governor_wait_seconds",
            "Time spent waiting for the request bucket or an operating budget.",
            vec![
                (
                    vec![("reason", "bucket".into())],
                    ConstCounter::new(c.bucket_wait_secs),
                ),
                (
                    vec![("reason", "operating".into())],
                    ConstCounter::new(c.operating_wait_secs),
                ),
            ],
        )?;
        family(
            &mut e,
            "b24ch_governor_bucket_level",
            "Current level of the request bucket.",
            vec![(vec![], ConstGauge::new(self.governor.bucket_level))],
        )?;
        family(
            &mut e,
            "b24ch_operating_used_seconds",
            "Operating time used per billing key in the current window.",
            self.governor
                .methods
                .iter()
                .map(|m| (vec![("method", m.key.clone())], ConstGauge::new(m.used)))
                .collect(),
        )?;
        let per_entity = |v: &dyn Fn(&EntityStats) -> u64| {
            self.entities
                .iter()
                .map(|s| (vec![("entity", s.entity.clone())], ConstCounter::new(v(s))))
                .collect::<Vec<_>>()
        };
        family(
            &mut e,
            "b24ch_rows_served",
            "Rows served per entity.",
            per_entity(&|s| s.rows_total),
        )?;
        let mut loads = Vec::new();
        for s in &self.entities {
            for (outcome, n) in [("ok", s.loads_ok), ("failed", s.loads_failed)] {
                loads.push((
                    vec![("entity", s.entity.clone()), ("outcome", outcome.into())],
                    ConstCounter::new(n),
                ));
            }
        }
        family(
            &mut e,
            "b24ch_loads",
            "Loads per entity and outcome.",
            loads,
        )?;
        family(
            &mut e,
            "b24ch_load_duration_seconds",
            "Duration of the last load per entity.",
            self.entities
                .iter()
                .filter_map(|s| {
                    let ms = s.last_duration_ms?;
                    Some((
                        vec![("entity", s.entity.clone())],
                        ConstGauge::new(ms as f64 / 1000.0),
                    ))
                })
                .collect(),
        )
    }
}
