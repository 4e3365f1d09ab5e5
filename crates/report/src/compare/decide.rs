//! The timing decision: one definition, used by `compare`, `nightly` and `validate-release`.
//!
//! A step's durations on each side are samples. NEW is compared with BASE on the log scale,
//! through every pairwise ratio `new_j / base_i` (`n_base × n_new` of them):
//!
//! - the **estimate** of the ratio is their median (the Hodges–Lehmann estimator);
//! - its **confidence bounds** are order statistics of the same ratios, chosen from the exact
//!   distribution of the Mann–Whitney U statistic. They are distribution-free: they hold
//!   whatever the shape of the noise (spikes included), provided the two sides' samples are
//!   exchangeable when nothing changed — which release validation's counterbalanced order is
//!   there to make true;
//! - the level is **corrected for the number of comparisons** (Bonferroni): with `m`
//!   comparisons in a run and a false-alarm rate `α` for the whole run, each one-sided bound
//!   holds at `1 − α/m`, so the chance that an identical NEW shows even one regression is at
//!   most `α`.
//!
//! A comparison is a **regression** when the lower bound is above the floor — the larger of
//! `min_ratio` and the calibrated noise floor, and `min_delta_ms` in milliseconds — and an
//! **improvement** when the upper bound is below it the other way. When the samples are too
//! few for the bounds to exist (with `n` repetitions on each side the smallest possible p-value
//! is `1 / C(2n, n)`), or the estimate shows a slowdown of at least `detect_ratio` that the
//! bounds cannot confirm, the comparison is **inconclusive**, never a regression, and says how
//! many repetitions would decide it.

use serde::{Deserialize, Serialize};

/// What the decision needs to know about the run it is part of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// The false-alarm rate for the whole run (e.g. 0.01).
    pub false_alarm_rate: f64,
    /// How many timing comparisons the run makes (at least 1).
    pub comparisons: usize,
}

impl Family {
    /// The one-sided level each bound is computed at: `α / m`.
    pub fn per_comparison(&self) -> f64 {
        self.false_alarm_rate / self.comparisons.max(1) as f64
    }
}

/// The floors below which no change counts, whatever the confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// A ratio (≥ 1): changes smaller than this factor never count.
    pub ratio: f64,
    /// Changes of at most this many ms (at BASE's median) never count.
    pub delta_ms: u64,
}

/// How one comparison came out. Too few samples for any bound is the only way to be
/// inconclusive: once the bounds exist, a slowdown they do not confirm is within the noise
/// (and [`Decision::would_decide`] says how many repetitions would settle one of its size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Slower beyond the floor, with confidence.
    Regression,
    /// Faster beyond the floor, with confidence (never fails).
    Improvement,
    /// A slowdown of at least the detection ratio seen, and too few samples for any bound.
    Inconclusive,
    /// No change beyond the floor that the samples can show.
    WithinNoise,
}

/// The numbers behind an [`Outcome`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The Hodges–Lehmann estimate of NEW / BASE.
    pub ratio: f64,
    /// Lower and upper confidence bounds of the ratio, each one-sided at `1 − α/m`; `None`
    /// when the samples are too few for any bound at that level.
    pub bounds: Option<(f64, f64)>,
    /// For a slowdown of at least the detection ratio seen but not confirmed: the repetitions
    /// per side that would decide a change of that size (`None`: more than [`MAX_REPEAT`]).
    pub would_decide: Option<u32>,
}

/// The largest repetition count [`Decision::would_decide`] looks at.
pub const MAX_REPEAT: u32 = 50;

/// Repetitions recommended beyond [`minimum_repeat`]: with fewer, one sample of BASE slowed by
/// the machine (a spike) leaves too many pairs out of order for a real 20 % change to be
/// confirmed. In simulation (the tests below: 3 % noise, one sample in 20 twice as long), a
/// 20 % slowdown of a 1 s step is confirmed in 72 % of validations at the minimum + 1 and in
/// more than 90 % at the minimum + 3.
pub const REPEAT_MARGIN: u32 = 3;

/// The repetitions per side to run for a family: [`minimum_repeat`] + [`REPEAT_MARGIN`].
pub fn recommended_repeat(family: Family) -> u32 {
    minimum_repeat(family).map_or(MAX_REPEAT, |n| n + REPEAT_MARGIN)
}

/// Decides BASE against NEW. `detect_ratio` is the smallest slowdown that, seen but not
/// confirmed, makes the comparison inconclusive rather than within noise. Both sides need at
/// least one sample.
pub fn decide(
    base: &[u64],
    new: &[u64],
    family: Family,
    floor: Floor,
    detect_ratio: f64,
) -> Decision {
    let base_log = logs(base);
    let new_log = logs(new);
    let diffs = pairwise(&base_log, &new_log);
    let estimate = median_sorted(&diffs);
    let base_ms = median_sorted(&sorted(base.iter().map(|ms| *ms as f64).collect()));
    let gamma = family.per_comparison();
    let bounds = critical(base.len(), new.len(), gamma).map(|u| bounds_at(&diffs, u));
    let floor_log = floor.ratio.max(1.0).ln();
    let beyond = |log_ratio: f64| {
        log_ratio.abs() > floor_log
            && base_ms * (log_ratio.abs().exp() - 1.0) > floor.delta_ms as f64
    };
    let seen = estimate > 0.0 && beyond(estimate) && estimate >= detect_ratio.max(1.0).ln();
    let outcome = match bounds {
        Some((low, _)) if low > 0.0 && beyond(low) => Outcome::Regression,
        Some((_, high)) if high < 0.0 && beyond(high) => Outcome::Improvement,
        None if seen => Outcome::Inconclusive,
        _ => Outcome::WithinNoise,
    };
    // A slowdown seen and not confirmed: how many repetitions would settle it either way.
    let would_decide = (seen && outcome != Outcome::Regression)
        .then(|| repetitions_to_decide(&base_log, &new_log, estimate, family, floor, base_ms))
        .flatten();
    Decision {
        outcome,
        ratio: estimate.exp(),
        bounds: bounds.map(|(low, high)| (low.exp(), high.exp())),
        would_decide,
    }
}

/// The fewest repetitions per side for which the bounds exist at all, for a family: below it,
/// no data can decide anything. `None` beyond [`MAX_REPEAT`].
pub fn minimum_repeat(family: Family) -> Option<u32> {
    (1..=MAX_REPEAT).find(|n| critical(*n as usize, *n as usize, family.per_comparison()).is_some())
}

/// The noise floor two identical sides show (calibration): the estimated ratio between them,
/// as a factor of at least 1 whichever side was slower.
pub fn noise_ratio(first: &[u64], second: &[u64]) -> Option<f64> {
    if first.is_empty() || second.is_empty() {
        return None;
    }
    let diffs = pairwise(&logs(first), &logs(second));
    Some(median_sorted(&diffs).abs().exp())
}

fn logs(samples: &[u64]) -> Vec<f64> {
    samples
        .iter()
        .map(|ms| (*ms).max(1) as f64)
        .map(f64::ln)
        .collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Every `new_j − base_i`, sorted ascending.
fn pairwise(base: &[f64], new: &[f64]) -> Vec<f64> {
    sorted(
        new.iter()
            .flat_map(|b| base.iter().map(move |a| b - a))
            .collect(),
    )
}

fn median_sorted(v: &[f64]) -> f64 {
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The lower and upper bounds from the sorted differences, for critical count `u`: the lower
/// bound is the `u`-th largest difference, the upper the `u`-th smallest.
fn bounds_at(diffs: &[f64], u: usize) -> (f64, f64) {
    (diffs[diffs.len() - u], diffs[u - 1])
}

/// Above this many pairs the exact distribution is replaced by its normal approximation.
const EXACT_PAIRS: usize = 2500;

/// The smallest `u` with `P(U ≥ u) ≤ gamma` under no change, `U` the Mann–Whitney count of
/// pairs where NEW exceeds BASE with `n` BASE and `m` NEW samples; `None` when even `U = n·m`
/// (every NEW above every BASE) is more likely than `gamma`.
pub(crate) fn critical(n: usize, m: usize, gamma: f64) -> Option<usize> {
    thread_local! {
        static KNOWN: std::cell::RefCell<std::collections::HashMap<(usize, usize, u64), Option<usize>>> =
            std::cell::RefCell::default();
    }
    let key = (n, m, gamma.to_bits());
    if let Some(known) = KNOWN.with(|k| k.borrow().get(&key).copied()) {
        return known;
    }
    let found = critical_uncached(n, m, gamma);
    KNOWN.with(|k| k.borrow_mut().insert(key, found));
    found
}

fn critical_uncached(n: usize, m: usize, gamma: f64) -> Option<usize> {
    let pairs = n * m;
    if pairs == 0 {
        return None;
    }
    if pairs > EXACT_PAIRS {
        // Normal approximation of U: mean nm/2, variance nm(n+m+1)/12.
        let mean = pairs as f64 / 2.0;
        let sd = (pairs as f64 * (n + m + 1) as f64 / 12.0).sqrt();
        let u = (mean + sd * upper_normal_quantile(gamma)).ceil() as usize;
        return (u <= pairs).then_some(u.max(1));
    }
    let counts = u_counts(n, m);
    let total: f64 = counts.iter().sum();
    let mut tail = 0.0;
    let mut found = None;
    for u in (1..=pairs).rev() {
        tail += counts[u];
        if tail / total <= gamma {
            found = Some(u);
        } else {
            break;
        }
    }
    found
}

/// How many arrangements of `n` BASE and `m` NEW samples give each value of U (no ties):
/// `f(i, j, u) = f(i − 1, j, u − j) + f(i, j − 1, u)`, the largest sample NEW or BASE.
fn u_counts(n: usize, m: usize) -> Vec<f64> {
    // row[j] = counts for (i, j) at the current i.
    let mut row: Vec<Vec<f64>> = (0..=m).map(|_| vec![1.0]).collect();
    for i in 1..=n {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
        next.push(vec![1.0]);
        for j in 1..=m {
            let mut counts = vec![0.0; i * j + 1];
            // The largest sample is BASE's: U as for (i − 1, j).
            for (u, c) in row[j].iter().enumerate() {
                counts[u] += c;
            }
            // The largest sample is NEW's: it exceeds all i BASE samples.
            for (u, c) in next[j - 1].iter().enumerate() {
                counts[u + i] += c;
            }
            next.push(counts);
        }
        row = next;
    }
    row.pop().unwrap_or_default()
}

/// `z` with `P(Z > z) = p` for a standard normal (Acklam's rational approximation of the
/// normal quantile, relative error below 1.2e-9), for `0 < p ≤ 0.5`.
fn upper_normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let p = p.clamp(1e-300, 0.5);
    // The lower quantile of p, negated.
    let lower = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    -lower
}

/// The fewest repetitions per side (more than now) at which data like these — the same noise
/// (the pooled residuals of both sides around their medians, at evenly spaced quantiles) and a
/// change of the size seen — would be decided a regression.
fn repetitions_to_decide(
    base: &[f64],
    new: &[f64],
    shift: f64,
    family: Family,
    floor: Floor,
    base_ms: f64,
) -> Option<u32> {
    let residuals = sorted(
        [base, new]
            .iter()
            .flat_map(|side| {
                let centre = median_sorted(&sorted(side.to_vec()));
                side.iter().map(move |x| x - centre)
            })
            .collect(),
    );
    let quantile = |p: f64| {
        let pos = p * (residuals.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        residuals[lo] + (residuals[hi] - residuals[lo]) * (pos - lo as f64)
    };
    let now = base.len().max(new.len()) as u32;
    let floor_log = floor.ratio.max(1.0).ln();
    (now + 1..=MAX_REPEAT).find(|&n| {
        let typical: Vec<f64> = (0..n)
            .map(|i| quantile((i as f64 + 0.5) / n as f64))
            .collect();
        let shifted: Vec<f64> = typical.iter().map(|x| x + shift).collect();
        let diffs = pairwise(&typical, &shifted);
        critical(n as usize, n as usize, family.per_comparison()).is_some_and(|u| {
            let low = bounds_at(&diffs, u).0;
            low > floor_log && base_ms * (low.exp() - 1.0) > floor.delta_ms as f64
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: Family = Family {
        false_alarm_rate: 0.01,
        comparisons: 3,
    };
    const FLOOR: Floor = Floor {
        ratio: 1.05,
        delta_ms: 50,
    };

    fn binomial(n: u64, k: u64) -> f64 {
        (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
    }

    #[test]
    fn u_counts_sum_to_the_arrangements_and_are_symmetric() {
        for (n, m) in [(1, 1), (3, 3), (5, 7), (7, 7)] {
            let c = u_counts(n, m);
            assert_eq!(c.len(), n * m + 1);
            let total: f64 = c.iter().sum();
            assert_eq!(total, binomial((n + m) as u64, n as u64), "{n}×{m}");
            for u in 0..c.len() {
                assert_eq!(c[u], c[c.len() - 1 - u]);
            }
        }
        // 3 against 3: U ≥ 9 in 1 of 20 arrangements, U ≥ 8 in 2, U ≥ 7 in 4.
        assert_eq!(&u_counts(3, 3)[6..], &[3.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn critical_counts_follow_the_exact_tail() {
        // 1/20 = 0.05: three against three decide nothing at 1 %.
        assert_eq!(critical(3, 3, 0.01), None);
        assert_eq!(critical(3, 3, 0.05), Some(9));
        // 7 against 7 at 0.01/3: up to 3 pairs out of order (P(U ≥ 46) = 7/3432).
        assert_eq!(critical(7, 7, 0.01 / 3.0), Some(46));
        assert_eq!(minimum_repeat(FAMILY), Some(6));
        let many = Family {
            false_alarm_rate: 0.01,
            comparisons: 100,
        };
        assert_eq!(minimum_repeat(many), Some(8));
    }

    #[test]
    fn the_normal_approximation_agrees_with_the_exact_count_where_both_apply() {
        let exact = critical(50, 50, 0.001).unwrap() as f64;
        let mean = 1250.0;
        let sd = (2500.0f64 * 101.0 / 12.0).sqrt();
        let approx = (mean + sd * upper_normal_quantile(0.001)).ceil();
        // Within 0.2 % of the 2500 pairs, and on the safe side (a higher bar).
        assert!(
            approx >= exact && approx - exact <= 5.0,
            "{exact} vs {approx}"
        );
        assert!((upper_normal_quantile(0.001) - 3.0902).abs() < 1e-3);
        assert!((upper_normal_quantile(0.05) - 1.6449).abs() < 1e-3);
    }

    #[test]
    fn identical_samples_are_within_noise() {
        let a = [1000, 1040, 980, 1010, 1100, 990, 1020];
        let d = decide(&a, &a, FAMILY, FLOOR, 1.2);
        assert_eq!(d.outcome, Outcome::WithinNoise);
        assert!((d.ratio - 1.0).abs() < 1e-9);
        let (low, high) = d.bounds.unwrap();
        assert!(low < 1.0 && high > 1.0);
    }

    #[test]
    fn a_clear_slowdown_is_a_regression_with_bounds_around_it() {
        let a = [1000, 1040, 980, 1010, 1100, 990, 1020];
        let b = [5000, 5040, 4980, 5010, 5100, 4990, 5020];
        let d = decide(&a, &b, FAMILY, FLOOR, 1.2);
        assert_eq!(d.outcome, Outcome::Regression);
        let (low, high) = d.bounds.unwrap();
        assert!(low > 4.0 && high < 5.5, "{low} {high}");
        assert_eq!(
            decide(&b, &a, FAMILY, FLOOR, 1.2).outcome,
            Outcome::Improvement
        );
    }

    #[test]
    fn three_samples_are_inconclusive_and_say_what_would_decide() {
        let d = decide(&[1000, 1040, 980], &[5000, 5040, 4980], FAMILY, FLOOR, 1.2);
        assert_eq!(d.outcome, Outcome::Inconclusive);
        assert_eq!(d.bounds, None);
        assert_eq!(d.would_decide, Some(6));
    }

    #[test]
    fn one_spike_is_not_a_regression() {
        let a = [1000, 1040, 980, 1010, 1100, 990, 1020];
        let b = [1010, 1030, 990, 3000, 1090, 1000, 1015];
        assert_eq!(
            decide(&a, &b, FAMILY, FLOOR, 1.2).outcome,
            Outcome::WithinNoise
        );
    }

    #[test]
    fn a_consistent_change_below_the_floor_does_not_count() {
        let a = [1000, 1001, 1002, 1003, 1004, 1005, 1006];
        let b = [1030, 1031, 1032, 1033, 1034, 1035, 1036];
        assert_eq!(
            decide(&a, &b, FAMILY, FLOOR, 1.2).outcome,
            Outcome::WithinNoise
        );
        // 40 % of 100 ms is under the 50 ms floor.
        let a = [100, 101, 102, 103, 104, 105, 106];
        let b = [140, 141, 142, 143, 144, 145, 146];
        assert_eq!(
            decide(&a, &b, FAMILY, FLOOR, 1.2).outcome,
            Outcome::WithinNoise
        );
    }

    #[test]
    fn noise_decides_how_many_repetitions_a_change_needs() {
        // ×1.3 seen in noisy samples, not confirmed at 7: more repetitions would decide it.
        let a = [1000, 1300, 800, 1100, 950, 1250, 900];
        let b = [1300, 1690, 1040, 1430, 1235, 1625, 1170];
        let d = decide(&a, &b, FAMILY, FLOOR, 1.2);
        assert_eq!(d.outcome, Outcome::WithinNoise);
        let n = d.would_decide.expect("decidable within 50");
        assert!(n > 7, "{n}");
    }

    #[test]
    fn the_noise_ratio_is_symmetric() {
        let a = [1000, 1010, 990];
        let b = [1100, 1110, 1090];
        let r = noise_ratio(&a, &b).unwrap();
        assert!((r - noise_ratio(&b, &a).unwrap()).abs() < 1e-12 && r > 1.09 && r < 1.11);
    }

    /// A small deterministic generator for the simulations below (splitmix64).
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        /// A duration around `ms`: log-normal with `sd`, and one sample in 20 twice as long
        /// (a machine busy elsewhere for a moment).
        fn duration(&mut self, ms: f64, sd: f64) -> u64 {
            let (u, v) = (self.uniform().max(1e-12), self.uniform());
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            let spike = if self.uniform() < 0.05 { 2.0 } else { 1.0 };
            (ms * (sd * z).exp() * spike) as u64
        }

        fn side(&mut self, n: usize, ms: f64, sd: f64) -> Vec<u64> {
            (0..n).map(|_| self.duration(ms, sd)).collect()
        }
    }

    /// Validations of three steps (a 400 ms, a 1 s and a 5 s step) at the repetitions
    /// `validate-release` picks for three comparisons (9); how many show any regression.
    fn validations(rounds: usize, noise_sd: f64, slowdown: [f64; 3]) -> usize {
        let family = Family {
            false_alarm_rate: 0.01,
            comparisons: 3,
        };
        let n = minimum_repeat(family).unwrap() as usize + REPEAT_MARGIN as usize;
        let mut rng = Noise(42);
        (0..rounds)
            .filter(|_| {
                [400.0, 1000.0, 5000.0]
                    .iter()
                    .zip(slowdown)
                    .any(|(ms, factor)| {
                        let a = rng.side(n, *ms, noise_sd);
                        let b = rng.side(n, ms * factor, noise_sd);
                        decide(&a, &b, family, FLOOR, 1.2).outcome == Outcome::Regression
                    })
            })
            .count()
    }

    #[test]
    fn identical_sides_raise_a_false_alarm_in_at_most_one_validation_in_a_hundred() {
        // Noisy (15 % and spikes) and quiet (3 %) machines: 4000 simulated A/A validations each.
        for sd in [0.15, 0.03] {
            let alarms = validations(4000, sd, [1.0; 3]);
            assert!(alarms <= 40, "{alarms} of 4000 at sd {sd}");
        }
    }

    #[test]
    fn a_4_s_slowdown_is_always_caught_and_20_percent_on_a_quiet_machine() {
        assert_eq!(validations(500, 0.15, [1.0, 5.0, 1.0]), 500);
        let caught = validations(500, 0.03, [1.0, 1.2, 1.0]);
        assert!(caught >= 450, "{caught} of 500");
    }
}
