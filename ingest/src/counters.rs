//! The ingest's metrics, through the `metrics` facade. Names live here and nowhere else, so a
//! dashboard has one place to read them from. The binary that serves them installs a recorder
//! (an exporter); without one (tests, a plain CLI run) every call is a no-op.
//!
//! Each counter is bumped where its event is decided, once: a document's outcome where a run
//! settles it, chunk reuse and embedding where the embedding stage counts them.

use crate::error::IndexError;
use crate::outcome::Outcome;

/// Documents that finished, by `outcome`: `indexed`, `unchanged`, `failed` or `deleted` (its
/// file is gone from the folder).
pub const FILES_TOTAL: &str = "rag_ingest_files_total";
/// Chunks that got a vector, by `kind`: `embedded` (the model ran) or `reused` (the store or
/// this run already had a vector for the same text).
pub const CHUNKS_TOTAL: &str = "rag_ingest_chunks_total";
/// Documents that failed, by `error`: the [`IndexError`] variant, in snake case.
pub const FAILURES_TOTAL: &str = "rag_ingest_failures_total";

/// Describes the counters to the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(FILES_TOTAL, "Documents ingested, by outcome");
    metrics::describe_counter!(CHUNKS_TOTAL, "Chunks given a vector, embedded or reused");
    metrics::describe_counter!(FAILURES_TOTAL, "Documents that failed to ingest, by error");
}

pub(crate) fn finished(result: Result<&Outcome, &IndexError>) {
    let outcome = match result {
        Ok(Outcome::Indexed { .. }) => "indexed",
        Ok(Outcome::Unchanged) => "unchanged",
        Err(e) => {
            metrics::counter!(FAILURES_TOTAL, "error" => e.kind()).increment(1);
            "failed"
        }
    };
    metrics::counter!(FILES_TOTAL, "outcome" => outcome).increment(1);
}

pub(crate) fn deleted() {
    metrics::counter!(FILES_TOTAL, "outcome" => "deleted").increment(1);
}

pub(crate) fn chunks_embedded(n: u64) {
    metrics::counter!(CHUNKS_TOTAL, "kind" => "embedded").increment(n);
}

pub(crate) fn chunks_reused(n: u64) {
    metrics::counter!(CHUNKS_TOTAL, "kind" => "reused").increment(n);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Counter totals by `name{label=value,..}`.
    #[derive(Clone, Default)]
    struct Totals(Arc<Mutex<BTreeMap<String, u64>>>);

    struct One {
        totals: Totals,
        key: String,
    }

    impl CounterFn for One {
        fn increment(&self, value: u64) {
            *self
                .totals
                .0
                .lock()
                .unwrap()
                .entry(self.key.clone())
                .or_default() += value;
        }
        fn absolute(&self, value: u64) {
            self.totals
                .0
                .lock()
                .unwrap()
                .insert(self.key.clone(), value);
        }
    }

    impl Recorder for Totals {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Counter::from_arc(Arc::new(One {
                totals: self.clone(),
                key: format!("{}{{{}}}", key.name(), labels.join(",")),
            }))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn each_outcome_lands_under_its_label() {
        let totals = Totals::default();
        metrics::with_local_recorder(&totals, || {
            finished(Ok(&Outcome::Indexed {
                chunks: 3,
                pages: 0,
            }));
            finished(Ok(&Outcome::Unchanged));
            finished(Ok(&Outcome::Unchanged));
            finished(Err(&IndexError::Folder("gone".into())));
            deleted();
            chunks_embedded(5);
            chunks_reused(2);
            chunks_reused(1);
        });
        let got = totals.0.lock().unwrap().clone();
        let want: BTreeMap<String, u64> = [
            ("rag_ingest_chunks_total{kind=embedded}", 5),
            ("rag_ingest_chunks_total{kind=reused}", 3),
            ("rag_ingest_failures_total{error=folder}", 1),
            ("rag_ingest_files_total{outcome=deleted}", 1),
            ("rag_ingest_files_total{outcome=failed}", 1),
            ("rag_ingest_files_total{outcome=indexed}", 1),
            ("rag_ingest_files_total{outcome=unchanged}", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(got, want);
    }
}
