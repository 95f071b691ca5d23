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

/// Statistics of the bin being filled, kept in registers until the bin changes (a
/// store/load round trip per sample would put memory latency on the critical path).
#[derive(Clone, Copy)]
struct Run {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
}

impl Run {
    const EMPTY: Self = Self {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        first: f64::NAN,
        last: f64::NAN,
    };

    #[inline(always)]
    fn push(&mut self, v: f64) {
        if self.count == 0 {
            self.first = v;
        }
        self.count += 1;
        self.sum += v;
        // `<`/`>` rather than f64::min so the loop has no NaN branches (v is never NaN).
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.last = v;
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
    // Bounds of the current bin in i128 so that no grid arithmetic can overflow.
    let (start, step) = (i128::from(start), i128::from(step));
    let mut current: Option<usize> = None;
    let (mut lo, mut hi) = (0i128, 0i128);
    let mut run = Run::EMPTY;
    for (&ti, &vi) in t.iter().zip(v) {
        if vi.is_nan() {
            continue;
        }
        let ti = i128::from(ti);
        if !(ti >= lo && ti < hi && current.is_some()) {
            // Sorted input takes this branch once per bin; no division per sample.
            if let Some(b) = current {
                run.flush(&mut out, b);
            }
            run = Run::EMPTY;
            let offset = ti - start;
            let k = offset.div_euclid(step);
            if offset < 0 || k >= n_bins as i128 {
                current = None;
                (lo, hi) = (0, 0);
                continue;
            }
            current = Some(k as usize);
            lo = start + k * step;
            hi = lo + step;
        }
        run.push(vi);
    }
    if let Some(b) = current {
        run.flush(&mut out, b);
    }
    for b in 0..n_bins {
        if out.count[b] > 0 {
            out.mean[b] = out.sum[b] / out.count[b] as f64;
        }
    }
    Ok(out)
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
