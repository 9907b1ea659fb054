//! What the benchmark binaries share: the cluster they run on, and the machine-readable
//! figure lines benches/ratios.sh collects.

use std::path::PathBuf;

use fundledger::postgres::testing::start_private;
use fundledger::postgres::{Cluster, Durability};

/// The durable cluster to measure on: `FUNDLEDGER_BENCH_CLUSTER` (a directory; benches/ratios.sh
/// starts every figure of one run on the same one, and stops it), else one under the temp
/// directory. Returns whether this process should stop it when done.
pub fn bench_cluster() -> (Cluster, bool) {
    match std::env::var_os("FUNDLEDGER_BENCH_CLUSTER") {
        Some(dir) if !dir.is_empty() => {
            (start_private(&PathBuf::from(dir), Durability::Durable), false)
        }
        _ => (
            start_private(
                &std::env::temp_dir().join("fundledger-bench-cluster"),
                Durability::Durable,
            ),
            true,
        ),
    }
}

/// One figure for benches/ratios.sh: `figure <name> <per second> <p50 ms> <p99 ms>`.
pub fn figure(name: &str, per_s: f64, p50_ms: f64, p99_ms: f64) {
    println!("figure {name} {per_s:.0} {p50_ms:.2} {p99_ms:.2}");
}
