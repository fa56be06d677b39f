//! Where outcomes are placed: the API document's eight delay buckets (what stats
//! report) and the fine log-spaced grid the recovery curve is learned on.

/// Lower bounds of the API document's delay buckets, in ms; the last is open-ended.
pub const BUCKET_BOUNDS_MS: [u64; BUCKETS] = [0, 1_000, 5_000, 15_000, 30_000, 60_000, 300_000, 900_000];
pub const BUCKETS: usize = 8;
pub const BUCKET_LABELS: [&str; BUCKETS] =
    ["0-1s", "1-5s", "5-15s", "15-30s", "30-60s", "1-5m", "5-15m", "15m+"];
/// Fine grid of the recovery curve.
pub const BINS: usize = 48;
/// Upper edge of each fine bin, ms: 100 ms growing by 25 % per bin (the last is ~1 h).
pub const BIN_EDGES_MS: [u64; BINS] = bin_edges();

const fn bin_edges() -> [u64; BINS] {
    let mut edges = [0u64; BINS];
    let mut edge = 100u64;
    let mut i = 0;
    while i < BINS {
        edges[i] = edge;
        edge = (edge * 5).div_ceil(4);
        i += 1;
    }
    edges
}

/// The fine bin holding clock value `x_ms` (bin `i` covers `(edge[i-1], edge[i]]`).
pub fn bin_of(x_ms: u64) -> usize {
    BIN_EDGES_MS.partition_point(|&edge| edge < x_ms).min(BINS - 1)
}

pub fn bucket_of(x_ms: u64) -> usize {
    BUCKET_BOUNDS_MS.iter().rposition(|&lo| x_ms >= lo).unwrap_or(0)
}
