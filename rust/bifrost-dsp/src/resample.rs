//! Binning of timestamped samples onto a regular time grid, all statistics in one pass.

use crate::{DspError, check_len};

/// Per-bin statistics of [`bin_regular`]. Every vector has one entry per bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    /// Number of non-NaN samples in the bin.
    pub count: Vec<i64>,
    /// Sum of the bin's samples (0 for an empty bin, as pandas' `sum`).
    pub sum: Vec<f64>,
    /// Mean of the bin's samples; NaN for an empty bin.
    pub mean: Vec<f64>,
    /// Smallest sample; NaN for an empty bin.
    pub min: Vec<f64>,
    /// Largest sample; NaN for an empty bin.
    pub max: Vec<f64>,
    /// First non-NaN sample in input order; NaN for an empty bin.
    pub first: Vec<f64>,
    /// Last non-NaN sample in input order; NaN for an empty bin.
    pub last: Vec<f64>,
}

impl Binned {
    fn empty(n_bins: usize) -> Self {
        Self {
            count: vec![0; n_bins],
            sum: vec![0.0; n_bins],
            mean: vec![f64::NAN; n_bins],
            min: vec![f64::NAN; n_bins],
            max: vec![f64::NAN; n_bins],
            first: vec![f64::NAN; n_bins],
            last: vec![f64::NAN; n_bins],
        }
    }
}

/// Statistics of one run of samples of the same bin.
#[derive(Clone, Copy)]
struct Run {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
}

/// Lanes of the vectorised reduction (independent accumulators).
const LANES: usize = 8;

impl Run {
    /// The statistics of `v` (NaN samples are missing). Eight accumulators per
    /// statistic let the compiler vectorise; the sum is thus added in a different order
    /// than a sequential loop (a rounding-level difference).
    #[inline(always)]
    fn of(v: &[f64]) -> Self {
        let mut sum = [0.0; LANES];
        let mut count = [0i64; LANES];
        let mut min = [f64::INFINITY; LANES];
        let mut max = [f64::NEG_INFINITY; LANES];
        let mut chunks = v.chunks_exact(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                let x = chunk[l];
                let present = !x.is_nan();
                sum[l] += if present { x } else { 0.0 };
                count[l] += i64::from(present);
                // NaN compares false, so it never becomes the min or the max.
                min[l] = if x < min[l] { x } else { min[l] };
                max[l] = if x > max[l] { x } else { max[l] };
            }
        }
        for (l, &x) in chunks.remainder().iter().enumerate() {
            if !x.is_nan() {
                sum[l] += x;
                count[l] += 1;
                min[l] = if x < min[l] { x } else { min[l] };
                max[l] = if x > max[l] { x } else { max[l] };
            }
        }
        let pairwise = |a: [f64; LANES], f: fn(f64, f64) -> f64| {
            f(
                f(f(a[0], a[4]), f(a[1], a[5])),
                f(f(a[2], a[6]), f(a[3], a[7])),
            )
        };
        Self {
            count: count.iter().sum(),
            sum: pairwise(sum, |a, b| a + b),
            min: pairwise(min, |a, b| if b < a { b } else { a }),
            max: pairwise(max, |a, b| if b > a { b } else { a }),
            first: v.iter().copied().find(|x| !x.is_nan()).unwrap_or(f64::NAN),
            last: v
                .iter()
                .rev()
                .copied()
                .find(|x| !x.is_nan())
                .unwrap_or(f64::NAN),
        }
    }

    /// Merges the run into bin `b` (a bin can be revisited when times are unsorted).
    fn flush(&self, out: &mut Binned, b: usize) {
        if self.count == 0 {
            return;
        }
        if out.count[b] == 0 {
            out.first[b] = self.first;
            out.min[b] = self.min;
            out.max[b] = self.max;
        } else {
            out.min[b] = out.min[b].min(self.min);
            out.max[b] = out.max[b].max(self.max);
        }
        out.count[b] += self.count;
        out.sum[b] += self.sum;
        out.last[b] = self.last;
    }
}

/// Bins samples `(t[i], v[i])` onto the grid `start + k * step`, `k = 0 .. n_bins`.
///
/// Bin `k` holds the samples with `start + k * step <= t < start + (k + 1) * step`
/// (closed on the left, like pandas' `resample` for fixed frequencies). One pass
/// computes count, sum, mean, min, max, first and last of every bin. NaN samples are
/// missing: they are not counted and change nothing. Infinite samples are values. The
/// times may be irregular and even unsorted (first and last then follow input order);
/// samples outside the grid are ignored.
///
/// # Errors
///
/// [`DspError::LengthMismatch`] if `t` and `v` differ in length,
/// [`DspError::InvalidArgument`] if `step <= 0`.
pub fn bin_regular(
    t: &[i64],
    v: &[f64],
    start: i64,
    step: i64,
    n_bins: usize,
) -> Result<Binned, DspError> {
    check_len(t.len(), v.len())?;
    if step <= 0 {
        return Err(DspError::InvalidArgument(
            "step must be a positive number of ticks",
        ));
    }
    let mut out = Binned::empty(n_bins);
    fill(t, v, start, step, &mut out);
    for b in 0..n_bins {
        if out.count[b] > 0 {
            out.mean[b] = out.sum[b] / out.count[b] as f64;
        }
    }
    Ok(out)
}

/// Index of the first sample of `t` outside `lo ..= hi` (or `t.len()`).
#[inline(always)]
fn run_end(t: &[i64], lo: i64, hi: i64) -> usize {
    let mut chunks = t.chunks_exact(LANES);
    let mut done = 0;
    for chunk in &mut chunks {
        let inside = chunk
            .iter()
            .fold(true, |all, &ti| all & (ti >= lo) & (ti <= hi));
        if !inside {
            break;
        }
        done += LANES;
    }
    done + t[done..]
        .iter()
        .position(|&ti| ti < lo || ti > hi)
        .unwrap_or(t.len() - done)
}

/// Fills `out` (count, sum, min, max, first, last) from runs of samples of one bin.
#[inline(always)]
fn fill_runs(t: &[i64], v: &[f64], start: i64, step: i64, out: &mut Binned) {
    let n_bins = out.count.len();
    // Grid arithmetic in i128 so that nothing can overflow.
    let (start, step) = (i128::from(start), i128::from(step));
    let mut i = 0;
    while i < t.len() {
        let offset = i128::from(t[i]) - start;
        let k = offset.div_euclid(step);
        if offset < 0 || k >= n_bins as i128 {
            i += 1;
            continue;
        }
        // The bin's times `lo ..= hi`, clamped to the range of i64.
        let lo = start + k * step;
        let hi = (lo + step - 1).min(i128::from(i64::MAX)) as i64;
        let lo = lo.max(i128::from(i64::MIN)) as i64;
        // A run of samples of bin k: the whole bin when the times are sorted.
        let end = i + run_end(&t[i..], lo, hi);
        Run::of(&v[i..end]).flush(out, k as usize);
        i = end;
    }
}

/// [`fill_runs`] with AVX2 when the CPU has it (64-bit integer compares; results are
/// identical).
fn fill(t: &[i64], v: &[f64], start: i64, step: i64, out: &mut Binned) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { fill_avx2(t, v, start, step, out) };
        return;
    }
    fill_runs(t, v, start, step, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2(t: &[i64], v: &[f64], start: i64, step: i64, out: &mut Binned) {
    fill_runs(t, v, start, step, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Lcg;

    fn same(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn errors() {
        assert!(matches!(
            bin_regular(&[1], &[], 0, 1, 1),
            Err(DspError::LengthMismatch { .. })
        ));
        assert!(matches!(
            bin_regular(&[], &[], 0, 0, 1),
            Err(DspError::InvalidArgument(_))
        ));
    }

    #[test]
    fn small_example() {
        let t = [0, 5, 9, 10, 25, 29, 31];
        let v = [1.0, 3.0, f64::NAN, 4.0, -2.0, 6.0, 100.0];
        let b = bin_regular(&t, &v, 0, 10, 3).unwrap();
        assert_eq!(b.count, vec![2, 1, 2]);
        assert_eq!(b.sum, vec![4.0, 4.0, 4.0]);
        assert_eq!(b.mean, vec![2.0, 4.0, 2.0]);
        assert_eq!(b.min, vec![1.0, 4.0, -2.0]);
        assert_eq!(b.max, vec![3.0, 4.0, 6.0]);
        assert_eq!(b.first, vec![1.0, 4.0, -2.0]);
        assert_eq!(b.last, vec![3.0, 4.0, 6.0]);
    }

    #[test]
    fn empty_bins_and_all_nan() {
        let b = bin_regular(&[0, 35], &[1.0, 2.0], 0, 10, 4).unwrap();
        assert_eq!(b.count, vec![1, 0, 0, 1]);
        assert!(b.mean[1].is_nan() && b.min[2].is_nan() && b.first[1].is_nan());
        assert_eq!(b.sum[1], 0.0);
        let b = bin_regular(&[0, 1], &[f64::NAN; 2], 0, 10, 1).unwrap();
        assert_eq!(b.count, vec![0]);
        assert!(b.mean[0].is_nan());
        let b = bin_regular(&[], &[], 0, 10, 0).unwrap();
        assert!(b.count.is_empty());
    }

    #[test]
    fn negative_times_and_extremes_do_not_overflow() {
        let t = [i64::MIN, -15, -5, i64::MAX];
        let v = [1.0, 2.0, 3.0, 4.0];
        let b = bin_regular(&t, &v, -20, 10, 2).unwrap();
        assert_eq!(b.count, vec![1, 1]);
        assert_eq!(b.first, vec![2.0, 3.0]);
    }

    #[test]
    fn unsorted_matches_naive() {
        let mut rng = Lcg::new(9);
        let n = 3000;
        let t: Vec<i64> = (0..n)
            .map(|_| (rng.uniform() * 1000.0) as i64 - 100)
            .collect();
        let v: Vec<f64> = (0..n)
            .map(|_| {
                if rng.uniform() < 0.05 {
                    f64::NAN
                } else {
                    rng.normal()
                }
            })
            .collect();
        let (start, step, n_bins) = (-50, 7, 120);
        let b = bin_regular(&t, &v, start, step, n_bins).unwrap();
        for k in 0..n_bins {
            let lo = start + k as i64 * step;
            let members: Vec<f64> = t
                .iter()
                .zip(&v)
                .filter(|&(&ti, vi)| ti >= lo && ti < lo + step && !vi.is_nan())
                .map(|(_, &vi)| vi)
                .collect();
            assert_eq!(b.count[k], members.len() as i64);
            if members.is_empty() {
                assert!(b.mean[k].is_nan());
                continue;
            }
            let sum: f64 = members.iter().sum();
            assert!((b.sum[k] - sum).abs() <= 1e-12 * (1.0 + sum.abs()));
            assert!(same(
                b.min[k],
                members.iter().copied().fold(f64::INFINITY, f64::min)
            ));
            assert!(same(
                b.max[k],
                members.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            ));
            assert_eq!(b.first[k], members[0]);
            assert_eq!(b.last[k], *members.last().unwrap());
        }
    }
}
