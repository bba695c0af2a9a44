use std::collections::HashSet;

use super::*;

fn view<'a>(m: &'a Metrics, s: &'a SamplerStats, engine_stats: Vec<(String, f64)>) -> View<'a> {
    View {
        metrics: m,
        seats_total: 2,
        seats_held: 1,
        detached: 0,
        engine_ready: true,
        sweeps: s,
        engine_stats,
    }
}

#[test]
fn names_are_unique_and_every_counter_ends_in_total() {
    let mut seen = HashSet::new();
    for f in FAMILIES {
        assert!(seen.insert(f.name), "{} declared twice", f.name);
        assert!(f.name.starts_with("seatkeeper_"), "{}", f.name);
        if f.kind == Kind::Counter {
            assert!(f.name.ends_with("_total"), "{}", f.name);
        }
    }
}

#[test]
fn renders_labels_from_their_enums_and_values_as_before() {
    let m = Metrics::default();
    m.ended(EndReason::ClientClose);
    m.reaped(Reason::PeerClose);
    m.bytes_sent.store(1234, Relaxed);
    let s = SamplerStats::default();
    s.last_sweep_ns.store(1_500_000, Relaxed);
    let out = render(&view(&m, &s, vec![("fps".into(), 29.5)]));
    for line in [
        "# HELP seatkeeper_sessions_ended_total Sessions ended, by reason.",
        "# TYPE seatkeeper_sessions_ended_total counter",
        "seatkeeper_sessions_ended_total{reason=\"bye\"} 0",
        "seatkeeper_sessions_ended_total{reason=\"client_close\"} 1",
        "seatkeeper_sessions_ended_total{reason=\"internal\"} 0",
        "seatkeeper_reaps_total{reason=\"peer_close\"} 1",
        "seatkeeper_bytes_sent_total 1234",
        "seatkeeper_seats_total 2",
        "seatkeeper_lock_held 1",
        "seatkeeper_engine_ready 1",
        "seatkeeper_watchdog_last_sweep_seconds 0.0015",
        "# TYPE seatkeeper_engine_stat gauge",
        "seatkeeper_engine_stat{name=\"fps\"} 29.5",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn a_family_without_samples_is_left_out() {
    let m = Metrics::default();
    let s = SamplerStats::default();
    let out = render(&view(&m, &s, Vec::new()));
    assert!(!out.contains("seatkeeper_engine_stat"), "{out}");
    // Every other family is there, each with its HELP and TYPE once.
    for f in FAMILIES.iter().filter(|f| f.labels != Labels::EngineStat) {
        let help = format!("# HELP {} ", f.name);
        assert_eq!(out.matches(&help).count(), 1, "{}", f.name);
    }
}
