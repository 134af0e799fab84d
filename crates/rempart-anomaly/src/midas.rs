//! MIDAS and MIDAS-R.
//!
//! Each edge `(u, v, t)` (source, destination, time tick) adds one to a count-min sketch of
//! the current tick's counts and one to a sketch of all counts so far. Under the hypothesis that
//! the edge arrives at a steady rate, the current count `a` after `t` ticks with total `s` is
//! compared with its expectation `s / t` by the chi-squared statistic
//! `(a - s/t)² · t² / (s · (t - 1))`. MIDAS clears the current counts at each new tick; MIDAS-R
//! multiplies them by a decay factor instead (recent ticks still count), and scores the
//! source and the destination the same way, reporting the largest of the three and which it was.
//!
//! **Steady traffic and the published score.** A decayed count settles at `rate / (1 − decay)`,
//! so under the published score a part that arrives at a perfectly steady rate scores about
//! `(1/(1−decay) − 1)² × rate`: 2.25 × its rate per tick at decay 0.6, and a server that takes
//! 600 connections every minute scores 1,350 every minute. That is harmless for ranking a labelled
//! data set but not for alerting, so [`Params::as_rate`] scores `(1 − decay) × count` instead,
//! an exponentially weighted rate, against the long-run rate: steady traffic of any volume then
//! scores near zero and a burst still stands out. The published form stays the default, which
//! `rempart anomaly eval` measures; the live edge streams score as rates.

/// A count-min sketch of `rows × columns` float counters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountMinSketch {
    rows: usize,
    columns: usize,
    data: Vec<f32>,
    /// Per row: an odd multiplier and an offset for multiply-shift hashing.
    seeds: Vec<(u64, u64)>,
}

/// SplitMix64: a fixed, portable source of hash seeds (runs are reproducible).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl CountMinSketch {
    pub fn new(rows: usize, columns: usize, seed: u64) -> CountMinSketch {
        let mut state = seed;
        let seeds = (0..rows)
            .map(|_| (splitmix(&mut state) | 1, splitmix(&mut state)))
            .collect();
        CountMinSketch {
            rows,
            columns,
            data: vec![0.0; rows * columns],
            seeds,
        }
    }

    /// The cell of `key` in each row.
    #[inline]
    pub fn cells(&self, key: u64, out: &mut [usize]) {
        for (i, (mul, add)) in self.seeds.iter().enumerate() {
            let h = (key ^ add).wrapping_mul(*mul);
            // The high bits of a multiply are the well-mixed ones.
            let cell = ((h >> 32) % self.columns as u64) as usize;
            out[i] = i * self.columns + cell;
        }
    }

    #[inline]
    pub fn add(&mut self, cells: &[usize], by: f32) {
        for &c in cells {
            self.data[c] += by;
        }
    }

    /// The estimate: the least of the key's counters.
    #[inline]
    pub fn get(&self, cells: &[usize]) -> f32 {
        cells.iter().map(|&c| self.data[c]).fold(f32::INFINITY, f32::min)
    }

    pub fn clear(&mut self) {
        self.data.fill(0.0);
    }

    pub fn scale(&mut self, factor: f32) {
        for x in &mut self.data {
            *x *= factor;
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// The chi-squared score of a current count `a`, a total `s`, at tick `t`. Only a count above
/// its expectation scores: a quiet tick is not an anomaly of the kind sought (a burst).
#[inline]
pub fn chi_squared(a: f32, s: f32, t: f32) -> f32 {
    if s == 0.0 || t <= 1.0 || a <= s / t {
        return 0.0;
    }
    let d = (a - s / t) * t;
    d * d / (s * (t - 1.0))
}

/// Which part of an edge burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burst {
    Edge,
    Source,
    Destination,
}

impl Burst {
    pub fn as_str(self) -> &'static str {
        match self {
            Burst::Edge => "edge",
            Burst::Source => "source",
            Burst::Destination => "destination",
        }
    }
}

/// A score and what drove it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f32,
    pub burst: Burst,
    /// The scored count (decayed; as a rate under [`Params::as_rate`]) and the expected count
    /// per tick, of the part that burst.
    pub current: f32,
    pub expected: f32,
    /// How many times the part that burst arrived in this tick alone.
    pub this_tick: f32,
}

/// The key of an edge in the sketches.
#[inline]
fn edge_key(u: u64, v: u64) -> u64 {
    u.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ v
}

/// Sketch geometry and decay: the authors' defaults (2 hash functions of 769 buckets, decay
/// 0.6).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub rows: usize,
    pub columns: usize,
    /// MIDAS-R's decay of the current counts per tick.
    pub decay: f32,
    pub seed: u64,
    /// MIDAS-R: score the decayed count as a rate (see the module's documentation).
    pub as_rate: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            rows: 2,
            columns: 769,
            decay: 0.6,
            seed: 0x5EED_0A0D_1A5E,
            as_rate: false,
        }
    }
}

/// Numbers the minutes of a stream that had edges, from 1, as the authors' preprocessing does
/// (a quiet night or weekend does not stretch the expected rate); shared by the data-set reader
/// and the live edge streams. An edge older than the latest minute counts in the current tick,
/// as MIDAS treats it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ticks {
    /// The latest minute seen.
    minute: Option<i64>,
    tick: u64,
}

impl Ticks {
    /// The tick of an edge at `minute`.
    pub fn at(&mut self, minute: i64) -> u64 {
        if self.minute.is_none_or(|l| minute > l) {
            self.minute = Some(minute);
            self.tick += 1;
        }
        self.tick
    }
}

/// MIDAS: edge counts of the current tick against all ticks.
#[derive(Debug, Clone)]
pub struct Midas {
    tick: u64,
    current: CountMinSketch,
    total: CountMinSketch,
    cells: Vec<usize>,
}

impl Midas {
    pub fn new(p: Params) -> Midas {
        let current = CountMinSketch::new(p.rows, p.columns, p.seed);
        Midas {
            tick: 1,
            total: current.clone(),
            cells: vec![0; p.rows],
            current,
        }
    }

    /// Scores edge `(u, v)` at tick `t` (ticks never go back; an older one counts as the
    /// current).
    pub fn score(&mut self, u: u64, v: u64, t: u64) -> f32 {
        if t > self.tick {
            self.current.clear();
            self.tick = t;
        }
        self.current.cells(edge_key(u, v), &mut self.cells);
        self.current.add(&self.cells, 1.0);
        self.total.add(&self.cells, 1.0);
        chi_squared(
            self.current.get(&self.cells),
            self.total.get(&self.cells),
            self.tick as f32,
        )
    }
}

/// MIDAS-R: decayed current counts; the edge, its source and its destination scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MidasR {
    tick: u64,
    decay: f32,
    /// Per part: decayed current counts, all counts, and this tick's counts alone.
    edge: Part,
    source: Part,
    destination: Part,
    cells: Vec<usize>,
    /// Absent from snapshots saved before it existed: the published score.
    #[serde(default)]
    as_rate: bool,
}

/// The sketches of one part (edge, source or destination).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Part {
    current: CountMinSketch,
    total: CountMinSketch,
    /// Absent from snapshots saved before it existed; then starts empty.
    #[serde(default)]
    tick: Option<CountMinSketch>,
}

impl Part {
    fn new(p: &Params, seed: u64) -> Part {
        let s = CountMinSketch::new(p.rows, p.columns, seed);
        Part {
            current: s.clone(),
            total: s.clone(),
            tick: Some(s),
        }
    }

    /// Counts `key` and returns (score, scored count, expected, this tick's count).
    fn count(&mut self, key: u64, cells: &mut [usize], t: f32, rate: Option<f32>) -> (f32, f32, f32, f32) {
        self.current.cells(key, cells);
        self.current.add(cells, 1.0);
        self.total.add(cells, 1.0);
        let tick = self.tick.get_or_insert_with(|| {
            let mut s = self.current.clone();
            s.clear();
            s
        });
        tick.add(cells, 1.0);
        let a = self.current.get(cells) * rate.unwrap_or(1.0);
        let s = self.total.get(cells);
        (chi_squared(a, s, t), a, s / t, tick.get(cells))
    }

    fn next_tick(&mut self, decay: f32) {
        self.current.scale(decay);
        if let Some(t) = &mut self.tick {
            t.clear();
        }
    }
}

impl MidasR {
    pub fn new(p: Params) -> MidasR {
        MidasR {
            tick: 1,
            decay: p.decay,
            edge: Part::new(&p, p.seed),
            source: Part::new(&p, p.seed.wrapping_add(1)),
            destination: Part::new(&p, p.seed.wrapping_add(2)),
            cells: vec![0; p.rows],
            as_rate: p.as_rate,
        }
    }

    /// Scores edge `(u, v)` at tick `t`, with the part that burst.
    pub fn score(&mut self, u: u64, v: u64, t: u64) -> Score {
        if t > self.tick {
            for p in [&mut self.edge, &mut self.source, &mut self.destination] {
                p.next_tick(self.decay);
            }
            self.tick = t;
        }
        let t = self.tick as f32;
        let rate = self.as_rate.then_some(1.0 - self.decay);
        let e = self.edge.count(edge_key(u, v), &mut self.cells, t, rate);
        let s = self.source.count(u, &mut self.cells, t, rate);
        let d = self.destination.count(v, &mut self.cells, t, rate);
        // The edge unless its source or destination scores higher.
        let (best, burst) = [(s, Burst::Source), (d, Burst::Destination)]
            .into_iter()
            .fold((e, Burst::Edge), |acc, x| if x.0.0 > acc.0.0 { x } else { acc });
        Score {
            value: best.0,
            burst,
            current: best.1,
            expected: best.2,
            this_tick: best.3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_scores_high_and_a_steady_edge_low() {
        let mut m = MidasR::new(Params::default());
        let mut steady = 0.0;
        for t in 1..=50 {
            steady = m.score(1, 2, t).value;
        }
        // Fifty copies of a new edge in one tick.
        let mut burst = m.score(7, 8, 51);
        for _ in 0..49 {
            burst = m.score(7, 8, 51);
        }
        // Decayed current counts settle above the rate (1 / (1 - decay)): a steady edge scores
        // a little, never much.
        assert!(steady < 3.0, "{steady}");
        assert!(burst.value > 100.0 * (steady + 1.0), "{burst:?}");
        assert_eq!(burst.current, 50.0);
    }

    #[test]
    fn a_source_that_fans_out_is_named() {
        let mut m = MidasR::new(Params::default());
        for t in 1..=30 {
            m.score(1, 2, t);
            m.score(3, 4, t);
        }
        // A scan: one source, a hundred destinations, one tick.
        let mut last = m.score(9, 1000, 31);
        for d in 1001..1100 {
            last = m.score(9, d, 31);
        }
        assert_eq!(last.burst, Burst::Source);
    }

    #[test]
    fn as_rates_steady_traffic_of_any_volume_scores_low_and_a_burst_high() {
        for as_rate in [false, true] {
            let mut m = MidasR::new(Params {
                as_rate,
                ..Params::default()
            });
            // A server taking 600 connections a minute from 600 clients, for two hours.
            let mut steady = 0.0f32;
            for t in 1..=120 {
                for c in 0..600 {
                    steady = steady.max(m.score(c, 9_999, t).value);
                }
            }
            if as_rate {
                assert!(steady < 50.0, "steady traffic scores low as a rate: {steady}");
            } else {
                assert!(steady > 1_000.0, "the published score grows with the rate: {steady}");
            }
            // Minute 121: a new source hits 300 addresses.
            let mut burst = m.score(77_777, 1, 121);
            for d in 2..=300 {
                burst = m.score(77_777, d, 121);
            }
            assert_eq!(burst.burst, Burst::Source);
            assert_eq!(burst.this_tick, 300.0);
            assert!(
                burst.value > 10.0 * steady.max(1.0),
                "{as_rate}: {burst:?} against {steady}"
            );
        }
    }

    #[test]
    fn this_tick_counts_only_the_current_tick() {
        let mut m = MidasR::new(Params::default());
        for _ in 0..5 {
            m.score(1, 2, 1);
        }
        assert_eq!(m.score(1, 2, 1).this_tick, 6.0);
        let s = m.score(1, 2, 2);
        assert_eq!(s.this_tick, 1.0);
        assert!(s.current > 1.0, "the decayed count remembers: {s:?}");
    }

    #[test]
    fn chi_squared_is_zero_at_the_expected_rate() {
        assert_eq!(chi_squared(2.0, 20.0, 10.0), 0.0);
        assert_eq!(chi_squared(1.0, 20.0, 10.0), 0.0, "below the expectation");
        assert_eq!(chi_squared(5.0, 5.0, 1.0), 0.0);
        assert!(chi_squared(10.0, 20.0, 10.0) > 0.0);
    }
}
