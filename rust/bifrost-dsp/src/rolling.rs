//! Rolling mean and rolling (sample) standard deviation.
//!
//! Both use the same block scheme: the input is cut into blocks of `window` samples.
//! A window ending at `i` either is exactly one block, or is a suffix of the block
//! before `i`'s block followed by a prefix of `i`'s block. Suffix summaries of the
//! previous block are computed once per block (O(window) every `window` samples) and the
//! prefix summary is accumulated as `i` advances, so the total cost is O(n). Summaries
//! are only ever merged, never subtracted from, so no rounding error is carried from one
//! window to the next.

use crate::{DspError, check_window};

/// A summary of a run of samples that can grow by one sample and merge with another.
trait Summary: Copy {
    /// The summary of no sample.
    const EMPTY: Self;
    /// Adds one sample.
    fn push(&mut self, x: f64);
    /// The statistic of the concatenation of `self` (earlier samples) and `later`.
    fn finish(&self, later: &Self) -> f64;
}

/// Runs the block scheme for summary `S`, writing one statistic per full window.
///
/// Outputs before the first full window are NaN. `x` and `out` have the same length and
/// `window >= 1` (checked by the callers).
fn blocked<S: Summary>(x: &[f64], window: usize, out: &mut [f64]) {
    out.fill(f64::NAN);
    if window > x.len() {
        return;
    }
    // suffix[j]: summary of x[start + j .. start + window] of the previous block.
    let mut suffix = vec![S::EMPTY; window];
    for (block_start, block) in (0..x.len()).step_by(window).zip(x.chunks(window)) {
        if block_start >= window {
            let previous = &x[block_start - window..block_start];
            let mut acc = S::EMPTY;
            for (slot, &v) in suffix.iter_mut().zip(previous).rev() {
                acc.push(missing_to_nan(v));
                *slot = acc;
            }
        }
        let mut prefix = S::EMPTY;
        for (offset, &v) in block.iter().enumerate() {
            prefix.push(missing_to_nan(v));
            let i = block_start + offset;
            if i + 1 < window {
                continue;
            }
            // The window starts at i + 1 - window, i.e. at `offset + 1` in the previous
            // block; it is a whole block when offset == window - 1.
            out[i] = match suffix.get(offset + 1) {
                Some(earlier) => earlier.finish(&prefix),
                None => S::EMPTY.finish(&prefix),
            };
        }
    }
}

/// Maps the values treated as missing (NaN, +inf, -inf) to NaN.
fn missing_to_nan(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::NAN }
}

/// Overwrites outputs whose window holds `window` equal samples with that sample's value
/// transformed by `value_of` (so a constant window gives an exact result).
fn equal_runs(x: &[f64], window: usize, out: &mut [f64], value_of: impl Fn(f64) -> f64) {
    let mut run = 0usize;
    let mut previous = f64::NAN;
    for (i, &v) in x.iter().enumerate() {
        // NaN != NaN, so a NaN always restarts the run (and its window is NaN anyway).
        run = if v == previous { run + 1 } else { 1 };
        previous = v;
        if run >= window && v.is_finite() {
            out[i] = value_of(v);
        }
    }
}

/// Neumaier-compensated sum of samples.
#[derive(Clone, Copy)]
struct Sum {
    sum: f64,
    compensation: f64,
    count: usize,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }
}

impl Summary for Sum {
    const EMPTY: Self = Self {
        sum: 0.0,
        compensation: 0.0,
        count: 0,
    };

    fn push(&mut self, x: f64) {
        self.add(x);
        self.count += 1;
    }

    fn finish(&self, later: &Self) -> f64 {
        let mut total = *self;
        total.add(later.sum);
        let count = (self.count + later.count) as f64;
        if total.sum.is_finite() {
            (total.sum + (total.compensation + later.compensation)) / count
        } else {
            // NaN (a missing sample), or an overflow to +/-inf of finite samples: the
            // compensation term is meaningless then.
            total.sum / count
        }
    }
}

/// Count, mean and sum of squared deviations (Welford), mergeable as in Chan et al.
///
/// The samples are shifted by the first one pushed (`shift`) before they are
/// accumulated: with large offsets (`1e9 + noise`) the shifted values are small and
/// exact, so the accuracy depends on the spread of the data, not on its level.
#[derive(Clone, Copy)]
struct Moments {
    shift: f64,
    count: f64,
    /// Mean of the shifted samples.
    mean: f64,
    m2: f64,
}

impl Summary for Moments {
    const EMPTY: Self = Self {
        shift: 0.0,
        count: 0.0,
        mean: 0.0,
        m2: 0.0,
    };

    fn push(&mut self, x: f64) {
        if self.count == 0.0 {
            self.shift = x;
        }
        let y = x - self.shift;
        self.count += 1.0;
        let delta = y - self.mean;
        self.mean += delta / self.count;
        self.m2 += delta * (y - self.mean);
    }

    fn finish(&self, later: &Self) -> f64 {
        let count = self.count + later.count;
        let m2 = if self.count == 0.0 {
            later.m2
        } else {
            let delta = (later.shift - self.shift) + (later.mean - self.mean);
            self.m2 + later.m2 + delta * delta * (self.count * later.count / count)
        };
        if m2.is_nan() || !(self.shift.is_finite() && later.shift.is_finite()) {
            // The window holds a missing sample.
            return f64::NAN;
        }
        // Every term above is >= 0, so m2 >= 0 up to rounding; clamp anyway.
        let variance = if m2 > 0.0 { m2 / (count - 1.0) } else { 0.0 };
        variance.sqrt()
    }
}

/// Rolling mean over a trailing window of `window` samples, written into `out`.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`, [`DspError::LengthMismatch`] if `out` and
/// `x` differ in length.
pub fn rolling_mean_into(x: &[f64], window: usize, out: &mut [f64]) -> Result<(), DspError> {
    check_window(x.len(), window, out.len())?;
    blocked::<Sum>(x, window, out);
    equal_runs(x, window, out, |v| v);
    Ok(())
}

/// Rolling mean over a trailing window of `window` samples.
///
/// Same as pandas' `Series.rolling(window, min_periods=window).mean()`; see the crate
/// documentation for NaN handling.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`.
pub fn rolling_mean(x: &[f64], window: usize) -> Result<Vec<f64>, DspError> {
    let mut out = vec![f64::NAN; x.len()];
    rolling_mean_into(x, window, &mut out)?;
    Ok(out)
}

/// Rolling sample standard deviation (`ddof = 1`), written into `out`.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`, [`DspError::LengthMismatch`] if `out` and
/// `x` differ in length.
pub fn rolling_std_into(x: &[f64], window: usize, out: &mut [f64]) -> Result<(), DspError> {
    check_window(x.len(), window, out.len())?;
    if window == 1 {
        // One sample has no sample standard deviation (ddof = 1), as in pandas.
        out.fill(f64::NAN);
        return Ok(());
    }
    blocked::<Moments>(x, window, out);
    equal_runs(x, window, out, |_| 0.0);
    Ok(())
}

/// Rolling sample standard deviation (`ddof = 1`) over a trailing window.
///
/// Same as pandas' `Series.rolling(window, min_periods=window).std()`; a window of 1
/// gives NaN everywhere. See the crate documentation for NaN handling.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`.
pub fn rolling_std(x: &[f64], window: usize) -> Result<Vec<f64>, DspError> {
    let mut out = vec![f64::NAN; x.len()];
    rolling_std_into(x, window, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, assert_close, naive_window};

    fn naive_mean(w: &[f64]) -> f64 {
        w.iter().sum::<f64>() / w.len() as f64
    }

    fn naive_std(w: &[f64]) -> f64 {
        if w.len() < 2 {
            return f64::NAN;
        }
        // Two-pass with a refined mean (the plain sum of 1e9-level values is too coarse).
        let rough = naive_mean(w);
        let mean = rough + w.iter().map(|v| v - rough).sum::<f64>() / w.len() as f64;
        let m2: f64 = w.iter().map(|v| (v - mean) * (v - mean)).sum();
        (m2 / (w.len() - 1) as f64).sqrt()
    }

    #[test]
    fn zero_window_is_an_error() {
        assert_eq!(rolling_mean(&[1.0], 0), Err(DspError::ZeroWindow));
        assert_eq!(rolling_std(&[], 0), Err(DspError::ZeroWindow));
        let mut out = [0.0; 2];
        assert_eq!(
            rolling_mean_into(&[1.0], 1, &mut out),
            Err(DspError::LengthMismatch {
                input: 1,
                output: 2
            })
        );
    }

    #[test]
    fn small_example() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let m = rolling_mean(&x, 2).unwrap();
        assert!(m[0].is_nan());
        assert_eq!(&m[1..], &[1.5, 2.5, 3.5, 4.5]);
        let s = rolling_std(&x, 3).unwrap();
        assert!(s[0].is_nan() && s[1].is_nan());
        assert_eq!(&s[2..], &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn empty_and_short_inputs() {
        assert!(rolling_mean(&[], 3).unwrap().is_empty());
        assert!(rolling_std(&[], 1).unwrap().is_empty());
        let m = rolling_mean(&[1.0, 2.0], 3).unwrap();
        assert!(m.iter().all(|v| v.is_nan()));
        assert_eq!(rolling_mean(&[7.0], 1).unwrap(), vec![7.0]);
        assert!(
            rolling_std(&[7.0, 8.0], 1)
                .unwrap()
                .iter()
                .all(|v| v.is_nan())
        );
    }

    #[test]
    fn matches_naive_on_random_data() {
        let mut rng = Lcg::new(42);
        for n in [1usize, 2, 7, 64, 257, 1000] {
            let x: Vec<f64> = (0..n).map(|_| rng.normal() * 10.0 + 3.0).collect();
            for w in [1usize, 2, 3, 5, 16, 63, 64, 100, 999, 1001] {
                let mean = rolling_mean(&x, w).unwrap();
                let std = rolling_std(&x, w).unwrap();
                for i in 0..n {
                    let expected_mean = naive_window(&x, w, i, naive_mean);
                    let expected_std = naive_window(&x, w, i, naive_std);
                    assert_close(mean[i], expected_mean, 1e-12, "mean");
                    assert_close(std[i], expected_std, 1e-10, "std");
                }
            }
        }
    }

    #[test]
    fn nan_poisons_exactly_the_windows_holding_it() {
        let mut x: Vec<f64> = (0..20).map(f64::from).collect();
        x[7] = f64::NAN;
        for w in [1usize, 2, 3, 4, 6] {
            let mean = rolling_mean(&x, w).unwrap();
            let std = rolling_std(&x, w).unwrap();
            for i in w - 1..x.len() {
                let holds_nan = i >= 7 && i < 7 + w;
                assert_eq!(mean[i].is_nan(), holds_nan, "mean w={w} i={i}");
                if w > 1 {
                    assert_eq!(std[i].is_nan(), holds_nan, "std w={w} i={i}");
                }
            }
        }
    }

    #[test]
    fn infinities_are_missing_like_nan() {
        let inf = f64::INFINITY;
        let x = [1.0, inf, 2.0, 3.0, -inf, 4.0, 5.0, inf, inf];
        let as_nan: Vec<f64> = x.iter().map(|&v| missing_to_nan(v)).collect();
        assert!(as_nan[7].is_nan() && as_nan[0] == 1.0);
        for w in [1usize, 2, 3] {
            for (got, expected) in [
                (
                    rolling_mean(&x, w).unwrap(),
                    rolling_mean(&as_nan, w).unwrap(),
                ),
                (
                    rolling_std(&x, w).unwrap(),
                    rolling_std(&as_nan, w).unwrap(),
                ),
            ] {
                for (g, e) in got.iter().zip(&expected) {
                    assert!(g == e || (g.is_nan() && e.is_nan()), "w={w}");
                }
            }
        }
        let m = rolling_mean(&x, 2).unwrap();
        assert!(m[1].is_nan() && m[2].is_nan() && m[8].is_nan());
        assert_eq!(m[3], 2.5);
        assert_eq!(m[6], 4.5);
        assert_eq!(
            rolling_std(&x, 2).unwrap()[3],
            std::f64::consts::FRAC_1_SQRT_2
        );
    }

    #[test]
    fn constant_input_is_exact() {
        let x = vec![0.1; 1000];
        for w in [2usize, 3, 7, 100] {
            let mean = rolling_mean(&x, w).unwrap();
            let std = rolling_std(&x, w).unwrap();
            assert!(mean[w - 1..].iter().all(|&v| v == 0.1));
            assert!(std[w - 1..].iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn large_offset_keeps_precision() {
        let mut rng = Lcg::new(7);
        let x: Vec<f64> = (0..20_000).map(|_| 1e9 + rng.normal() * 1e-3).collect();
        for w in [10usize, 333, 5000] {
            let std = rolling_std(&x, w).unwrap();
            for i in (w - 1..x.len()).step_by(97) {
                let expected = naive_window(&x, w, i, naive_std);
                assert_close(std[i], expected, 1e-6, "offset std");
            }
        }
    }

    #[test]
    fn spike_leaving_the_window_leaves_no_trace() {
        let mut rng = Lcg::new(3);
        let mut x: Vec<f64> = (0..500).map(|_| rng.normal() * 1e-6).collect();
        x[100] = 1e12;
        let w = 50;
        let std = rolling_std(&x, w).unwrap();
        let mean = rolling_mean(&x, w).unwrap();
        for i in 150..x.len() {
            assert_close(std[i], naive_window(&x, w, i, naive_std), 1e-9, "std");
            assert_close(mean[i], naive_window(&x, w, i, naive_mean), 1e-9, "mean");
        }
    }
}
