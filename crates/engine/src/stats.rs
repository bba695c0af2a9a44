//! Engine `stats`: the latest figures of each session (shown in
//! `GET /sessions/{id}` as `engine_stats`) and engine-wide numeric gauges
//! (`seatkeeper_engine_stat{name=…}` in `/metrics`). An engine chooses the
//! field names, so the gauges keep at most [`MAX_NAMES`] names of a safe
//! shape: a label's cardinality must not be the engine's to grow.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use serde_json::{Map, Value};

/// Most distinct gauge names kept; later new names are ignored.
pub const MAX_NAMES: usize = 32;

/// Whether `name` may be a gauge label: `[a-z_][a-z0-9_]{0,63}`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// The latest `stats` of one session, shared by the engine link (writer)
/// and the session's `/sessions` view (reader).
#[derive(Debug, Clone, Default)]
pub struct SessionStats(Arc<Mutex<Option<Map<String, Value>>>>);

impl SessionStats {
    /// Replaces the figures.
    pub fn set(&self, fields: Map<String, Value>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(fields);
    }

    /// The latest figures, if the engine sent any.
    pub fn get(&self) -> Option<Map<String, Value>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Engine-wide latest value of each numeric field, bounded in names.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    values: BTreeMap<String, f64>,
}

impl Gauges {
    /// Takes the numeric fields of one `stats` message; returns how many
    /// fields were left out (bad name, or past [`MAX_NAMES`]).
    pub fn update(&mut self, fields: &Map<String, Value>) -> usize {
        let mut skipped = 0;
        for (name, value) in fields {
            let Some(v) = value.as_f64().filter(|v| v.is_finite()) else {
                continue; // not a number: /sessions shows it, /metrics cannot
            };
            if !valid_name(name)
                || (self.values.len() >= MAX_NAMES && !self.values.contains_key(name))
            {
                skipped += 1;
                continue;
            }
            self.values.insert(name.clone(), v);
        }
        skipped
    }

    /// Name and value of every gauge, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, f64)> {
        self.values.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_checked_and_bounded() {
        assert!(valid_name("gpu_util"));
        assert!(valid_name("_x9"));
        for bad in ["", "GPU", "9x", "a-b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        let mut g = Gauges::default();
        let first = json!({"gpu_util": 0.5, "model": "x", "Bad": 1, "n": 3});
        assert_eq!(g.update(first.as_object().unwrap()), 1);
        assert_eq!(g.snapshot(), [("gpu_util".into(), 0.5), ("n".into(), 3.0)]);
        let mut many = Map::new();
        for i in 0..100 {
            many.insert(format!("f{i}"), json!(i));
        }
        assert_eq!(g.update(&many), 100 - (MAX_NAMES - 2));
        assert_eq!(g.snapshot().len(), MAX_NAMES);
        // A known name still updates once the table is full.
        assert_eq!(g.update(json!({"n": 4}).as_object().unwrap()), 0);
        assert!(g.snapshot().contains(&("n".into(), 4.0)));
    }
}
