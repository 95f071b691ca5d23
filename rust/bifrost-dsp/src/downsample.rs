//! Downsampling for plots: MinMax, M4, LTTB and MinMaxLTTB, returning sample indices.
//!
//! The bins follow tsdownsample's conventions so that the selected indices are the
//! same: without `x`, `n_bins` bins of `(n - 1) / n_bins` samples over the index; with
//! `x` (sorted ascending), bins of equal width in `x`. NaN samples are never selected
//! unless a whole bin is NaN (then its first sample stands in).

use rayon::prelude::*;

use crate::DspError;

/// Inputs at least this long are scanned by several threads.
const PARALLEL_FROM: usize = 1 << 18;

/// Bounds `[start, end)` of the bins, `None` for a bin without samples.
type Bin = Option<(usize, usize)>;

/// `n_bins` bins over the index `0..n` (tsdownsample's "without x" rule).
fn index_bins(n: usize, n_bins: usize) -> Vec<Bin> {
    let block = (n - 1) as f64 / n_bins as f64;
    let mut start = 0;
    (0..n_bins)
        .map(|i| {
            // Multiplying (rather than accumulating) keeps the rounding of every edge
            // independent.
            let end = ((block * (i + 1) as f64) as usize + 1).min(n);
            let bin = (start, end);
            start = end;
            (bin.1 > bin.0).then_some(bin)
        })
        .collect()
}

/// `n_bins` bins of equal width between `x[0]` and `x[n - 1]` (x sorted ascending).
fn x_bins(x: &[f64], n_bins: usize, close_last: bool) -> Vec<Bin> {
    let n = x.len();
    let x0 = x[0];
    // Divided first so that the difference cannot overflow.
    let step = x[n - 1] / n_bins as f64 - x0 / n_bins as f64;
    let mut idx = 0usize;
    (0..n_bins)
        .map(|i| {
            let start = idx;
            let edge = x0 + step * (i + 1) as f64;
            if start >= n || x[start] >= edge {
                return None;
            }
            // First index after `edge` (bisect right). As in tsdownsample, MinMax leaves
            // the last sample out when the last edge rounds below x[n - 1]; M4 does not.
            idx = if close_last && i + 1 == n_bins {
                n
            } else {
                start + x[start..].partition_point(|&v| v <= edge)
            };
            Some((start, idx))
        })
        .collect()
}

/// Index of the first minimum and first maximum of a non-empty slice, NaN ignored (the
/// first sample if all are NaN).
fn argminmax(y: &[f64]) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { argminmax_avx2(y) };
        }
    }
    argminmax_portable(y)
}

/// AVX2 version: vector minimum and maximum of the slice first (at memory speed), then
/// a vector search for their first positions in the slice, which is in cache by then.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn argminmax_avx2(y: &[f64]) -> (usize, usize) {
    use std::arch::x86_64::{
        _CMP_EQ_OQ, _mm256_cmp_pd, _mm256_loadu_pd, _mm256_max_pd, _mm256_min_pd,
        _mm256_movemask_pd, _mm256_set1_pd, _mm256_storeu_pd,
    };
    const W: usize = 4;
    let chunks = y.chunks_exact(4 * W);
    let rest = chunks.remainder();
    let mut lo = [_mm256_set1_pd(f64::INFINITY); 4];
    let mut hi = [_mm256_set1_pd(f64::NEG_INFINITY); 4];
    for chunk in chunks {
        for k in 0..4 {
            // SAFETY: `chunk` holds 16 samples, so each 4-sample load is in bounds.
            let v = unsafe { _mm256_loadu_pd(chunk.as_ptr().add(k * W)) };
            // With a NaN operand min/max return the second operand: NaN is skipped.
            lo[k] = _mm256_min_pd(v, lo[k]);
            hi[k] = _mm256_max_pd(v, hi[k]);
        }
    }
    let mut lanes = [0.0f64; 4 * W];
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    for (k, vector) in lo.iter().enumerate() {
        // SAFETY: `lanes` has room for 4 vectors of 4.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr().add(k * W), *vector) };
    }
    for &v in lanes.iter().chain(rest) {
        min = if v < min { v } else { min };
    }
    for (k, vector) in hi.iter().enumerate() {
        // SAFETY: as above.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr().add(k * W), *vector) };
    }
    for &v in lanes.iter().chain(rest) {
        max = if v > max { v } else { max };
    }
    let find = |target: f64| -> usize {
        let wanted = _mm256_set1_pd(target);
        let blocks = y.chunks_exact(W);
        let tail = blocks.remainder();
        for (b, block) in blocks.enumerate() {
            // SAFETY: `block` holds W samples.
            let v = unsafe { _mm256_loadu_pd(block.as_ptr()) };
            let mask = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(v, wanted));
            if mask != 0 {
                return b * W + mask.trailing_zeros() as usize;
            }
        }
        let offset = y.len() - tail.len();
        // All NaN: the first sample stands in.
        tail.iter()
            .position(|&v| v == target)
            .map_or(0, |j| offset + j)
    };
    (find(min), find(max))
}

#[inline(always)]
fn argminmax_portable(y: &[f64]) -> (usize, usize) {
    // Lane-wise extremes with the block number where each lane last improved: branch-free
    // compares and selects that vectorise. Strict comparisons keep the first occurrence
    // within a lane, and NaN never compares true, so it is skipped.
    const LANES: usize = 8;
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    // Block numbers as f64 (exact below 2^53) so that every lane has the same width.
    let mut lo_at = [0.0f64; LANES];
    let mut hi_at = [0.0f64; LANES];
    let chunks = y.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut block = 0.0f64;
    for chunk in chunks {
        for j in 0..LANES {
            let v = chunk[j];
            let lower = v < lo[j];
            lo[j] = if lower { v } else { lo[j] };
            lo_at[j] = if lower { block } else { lo_at[j] };
            let higher = v > hi[j];
            hi[j] = if higher { v } else { hi[j] };
            hi_at[j] = if higher { block } else { hi_at[j] };
        }
        block += 1.0;
    }
    let mut best_lo: Option<(f64, usize)> = None;
    let mut best_hi: Option<(f64, usize)> = None;
    let consider = |best: &mut Option<(f64, usize)>, v: f64, at: usize, better: bool| {
        let replace = match *best {
            None => true,
            Some((b, i)) => better || (v == b && at < i),
        };
        if replace {
            *best = Some((v, at));
        }
    };
    for j in 0..LANES {
        if lo[j] < f64::INFINITY {
            let at = lo_at[j] as usize * LANES + j;
            let better = best_lo.is_some_and(|(b, _)| lo[j] < b);
            consider(&mut best_lo, lo[j], at, better);
        }
        if hi[j] > f64::NEG_INFINITY {
            let at = hi_at[j] as usize * LANES + j;
            let better = best_hi.is_some_and(|(b, _)| hi[j] > b);
            consider(&mut best_hi, hi[j], at, better);
        }
    }
    let offset = y.len() - rest.len();
    for (j, &v) in rest.iter().enumerate() {
        if v < best_lo.map_or(f64::INFINITY, |(b, _)| b) {
            best_lo = Some((v, offset + j));
        }
        if v > best_hi.map_or(f64::NEG_INFINITY, |(b, _)| b) {
            best_hi = Some((v, offset + j));
        }
    }
    // Infinite extremes equal to the start values never register above; find them (or
    // give the first sample when everything is NaN).
    let find = |target: f64| y.iter().position(|&v| v == target).unwrap_or(0);
    let lo_index = best_lo.map_or_else(|| find(f64::INFINITY), |(_, i)| i);
    let hi_index = best_hi.map_or_else(|| find(f64::NEG_INFINITY), |(_, i)| i);
    (lo_index, hi_index)
}

fn check_x(x: &[f64], n: usize) -> Result<(), DspError> {
    if x.len() != n {
        return Err(DspError::LengthMismatch {
            input: n,
            output: x.len(),
        });
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(DspError::NotFinite("x of a downsampling"));
    }
    if x.windows(2).any(|w| w[1] < w[0]) {
        return Err(DspError::InvalidArgument(
            "x must be sorted in ascending order",
        ));
    }
    Ok(())
}

fn bins_for(x: Option<&[f64]>, n: usize, n_bins: usize, close_last: bool) -> Vec<Bin> {
    match x {
        Some(x) => x_bins(x, n_bins, close_last),
        None => index_bins(n, n_bins),
    }
}

/// MinMax: the first minimum and maximum of each of `n_out / 2` bins, in index order.
///
/// With `x` a bin of at most two samples keeps them all and an empty bin adds nothing.
/// Returns `0..n` when `n_out >= n`.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if `n_out` is odd or below 2; errors of `x` (length,
/// not finite, not sorted).
pub fn minmax(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Result<Vec<usize>, DspError> {
    if n_out < 2 || n_out % 2 != 0 {
        return Err(DspError::InvalidArgument(
            "n_out must be an even number of at least 2 for minmax",
        ));
    }
    if let Some(x) = x {
        check_x(x, y.len())?;
    }
    Ok(minmax_unchecked(x, y, n_out))
}

fn minmax_unchecked(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Vec<usize> {
    let n = y.len();
    if n_out >= n {
        return (0..n).collect();
    }
    let bins = bins_for(x, n, n_out / 2, false);
    let pick = |&(start, end): &(usize, usize)| -> [usize; 2] {
        let (lo, hi) = argminmax(&y[start..end]);
        [start + lo.min(hi), start + lo.max(hi)]
    };
    // Two threads read memory faster than one; below a few hundred thousand samples the
    // hand-off costs more than it saves.
    let present: Vec<(usize, usize)> = bins.iter().flatten().copied().collect();
    let picked: Vec<[usize; 2]> = if n >= PARALLEL_FROM {
        present.par_iter().with_min_len(64).map(pick).collect()
    } else {
        present.iter().map(pick).collect()
    };
    let mut out = Vec::with_capacity(n_out);
    for ((start, end), pair) in present.into_iter().zip(picked) {
        if x.is_some() && end - start <= 2 {
            out.extend(start..end);
        } else {
            out.extend(pair);
        }
    }
    out
}

/// M4: per bin of `n_out / 4`, its first sample, first minimum, first maximum and last
/// sample, sorted (duplicates kept). Returns `0..n` when `n_out >= n`.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] unless `n_out` is a positive multiple of 4; errors of
/// `x`.
pub fn m4(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Result<Vec<usize>, DspError> {
    if n_out < 4 || n_out % 4 != 0 {
        return Err(DspError::InvalidArgument(
            "n_out must be a positive multiple of 4 for m4",
        ));
    }
    if let Some(x) = x {
        check_x(x, y.len())?;
    }
    let n = y.len();
    if n_out >= n {
        return Ok((0..n).collect());
    }
    let mut out = Vec::with_capacity(n_out);
    for (start, end) in bins_for(x, n, n_out / 4, true).into_iter().flatten() {
        let (lo, hi) = argminmax(&y[start..end]);
        out.push(start);
        out.push(start + lo.min(hi));
        out.push(start + lo.max(hi));
        out.push(end - 1);
    }
    Ok(out)
}

/// Mean of the non-NaN samples of a slice (NaN if there are none).
fn nan_mean(y: &[f64]) -> f64 {
    let (sum, count) = y
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, c), &v| (s + v, c + 1));
    sum / count as f64
}

/// Largest-Triangle-Three-Buckets over `x` (or the index) and `y`.
fn lttb_unchecked(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Vec<usize> {
    let n = y.len();
    if n_out >= n {
        return (0..n).collect();
    }
    let every = (n - 2) as f64 / (n_out - 2) as f64;
    let mut out = vec![0usize; n_out];
    let mut a = 0usize;
    for i in 0..n_out - 2 {
        let next_start = (every * (i + 1) as f64) as usize + 1;
        let next_end = ((every * (i + 2) as f64) as usize + 1).min(n);
        let avg_y = nan_mean(&y[next_start..next_end]);
        let lo = (every * i as f64) as usize + 1;
        let hi = next_start;
        let ay = y[a];
        let mut best = -1.0f64;
        let mut chosen = lo;
        match x {
            None => {
                let avg_x = (next_start + next_end - 1) as f64 / 2.0;
                let d1 = a as f64 - avg_x;
                let d2 = avg_y - ay;
                let offset = d1 * ay;
                for (j, &yj) in y[lo..hi].iter().enumerate() {
                    let dx = a as f64 - (lo + j) as f64;
                    let area = (d1 * yj - dx * d2 - offset).abs();
                    if area > best {
                        best = area;
                        chosen = lo + j;
                    }
                }
            }
            Some(x) => {
                let avg_x = (x[next_end - 1] + x[next_start]) / 2.0;
                let ax = x[a];
                let d1 = ax - avg_x;
                let d2 = avg_y - ay;
                let offset = d1 * ay + d2 * ax;
                for (j, (&yj, &xj)) in y[lo..hi].iter().zip(&x[lo..hi]).enumerate() {
                    let area = (d1 * yj + d2 * xj - offset).abs();
                    if area > best {
                        best = area;
                        chosen = lo + j;
                    }
                }
            }
        }
        // A NaN area never wins (NaN > best is false); `chosen` defaults to the bucket's
        // first sample when every area is NaN.
        a = chosen;
        out[i + 1] = a;
    }
    out[n_out - 1] = n - 1;
    out
}

/// Largest-Triangle-Three-Buckets: `n_out` indices, the first and last sample included.
///
/// Returns `0..n` when `n_out >= n`. Averages skip NaN; NaN samples are not chosen
/// unless a whole bucket is NaN.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if `n_out < 3`; errors of `x`.
pub fn lttb(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Result<Vec<usize>, DspError> {
    if n_out < 3 {
        return Err(DspError::InvalidArgument(
            "n_out must be at least 3 for lttb",
        ));
    }
    if let Some(x) = x {
        check_x(x, y.len())?;
    }
    Ok(lttb_unchecked(x, y, n_out))
}

/// MinMaxLTTB: MinMax preselection of `n_out * ratio` points (first and last sample
/// kept), then LTTB on them; plain LTTB when `n / n_out <= ratio`.
///
/// The LTTB stage places the preselected points at their `x` (their sample index
/// without `x`).
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if `n_out < 3` or `ratio < 2`; errors of `x`.
pub fn minmaxlttb(
    x: Option<&[f64]>,
    y: &[f64],
    n_out: usize,
    ratio: usize,
) -> Result<Vec<usize>, DspError> {
    if n_out < 3 {
        return Err(DspError::InvalidArgument(
            "n_out must be at least 3 for minmaxlttb",
        ));
    }
    if ratio < 2 {
        return Err(DspError::InvalidArgument("minmax_ratio must be at least 2"));
    }
    if let Some(x) = x {
        check_x(x, y.len())?;
    }
    let n = y.len();
    if n / n_out <= ratio {
        return Ok(lttb_unchecked(x, y, n_out));
    }
    let inner_x = x.map(|x| &x[1..n - 1]);
    let mut index = Vec::with_capacity(n_out * ratio + 2);
    index.push(0);
    index.extend(
        minmax_unchecked(inner_x, &y[1..n - 1], n_out * ratio)
            .into_iter()
            .map(|i| i + 1),
    );
    index.push(n - 1);
    let ys: Vec<f64> = index.iter().map(|&i| y[i]).collect();
    // Without x, the preselected points keep their sample index as x (not evenly spaced).
    let xs: Vec<f64> = match x {
        Some(x) => index.iter().map(|&i| x[i]).collect(),
        None => index.iter().map(|&i| i as f64).collect(),
    };
    let chosen = lttb_unchecked(Some(&xs), &ys, n_out);
    Ok(chosen.into_iter().map(|i| index[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Lcg;

    #[test]
    fn parameter_errors() {
        let y = [1.0, 2.0, 3.0];
        assert!(minmax(None, &y, 3).is_err());
        assert!(minmax(None, &y, 0).is_err());
        assert!(m4(None, &y, 6).is_err());
        assert!(lttb(None, &y, 2).is_err());
        assert!(minmaxlttb(None, &y, 10, 1).is_err());
        assert!(lttb(Some(&[0.0, 2.0, 1.0]), &y, 3).is_err());
        assert!(lttb(Some(&[0.0, 1.0]), &y, 3).is_err());
        assert!(minmax(Some(&[0.0, f64::NAN, 1.0]), &y, 2).is_err());
    }

    #[test]
    fn short_inputs_return_everything() {
        assert_eq!(minmax(None, &[], 4).unwrap(), Vec::<usize>::new());
        assert_eq!(lttb(None, &[5.0], 10).unwrap(), vec![0]);
        assert_eq!(m4(None, &[1.0, 2.0], 4).unwrap(), vec![0, 1]);
        assert_eq!(
            minmaxlttb(None, &[1.0, 2.0, 3.0], 3, 4).unwrap(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn linear_example() {
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(lttb(None, &y, 4).unwrap(), vec![0, 1, 5, 9]);
        let x: Vec<f64> = y.clone();
        assert_eq!(lttb(Some(&x), &y, 4).unwrap(), vec![0, 1, 5, 9]);
        assert_eq!(minmaxlttb(None, &y, 4, 2).unwrap(), vec![0, 1, 5, 9]);
        let y: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(
            minmax(None, &y, 10).unwrap(),
            vec![0, 19, 20, 39, 40, 59, 60, 79, 80, 99]
        );
        assert_eq!(
            minmax(Some(&y), &y, 10).unwrap(),
            vec![0, 19, 20, 39, 40, 59, 60, 79, 80, 99]
        );
    }

    #[test]
    fn nan_is_skipped() {
        let mut rng = Lcg::new(1);
        let mut y: Vec<f64> = (0..1000).map(|_| rng.normal()).collect();
        for i in (0..1000).step_by(7) {
            y[i] = f64::NAN;
        }
        for idx in [
            minmax(None, &y, 20).unwrap(),
            m4(None, &y, 20).unwrap(),
            lttb(None, &y, 50).unwrap(),
            minmaxlttb(None, &y, 50, 4).unwrap(),
        ] {
            assert!(idx.windows(2).all(|w| w[0] <= w[1]));
            // Only the fixed first/last samples (and M4's bin edges) may be NaN.
            let inner = &idx[1..idx.len() - 1];
            assert!(inner.iter().filter(|&&i| y[i].is_nan()).count() <= inner.len() / 2);
        }
        let all_nan = vec![f64::NAN; 100];
        assert_eq!(minmax(None, &all_nan, 4).unwrap().len(), 4);
        assert_eq!(lttb(None, &all_nan, 10).unwrap().len(), 10);
    }

    #[test]
    fn argminmax_finds_first_extremes() {
        let mut rng = Lcg::new(2);
        for n in [1usize, 3, 8, 9, 31, 100, 1000] {
            let mut y: Vec<f64> = (0..n).map(|_| (rng.uniform() * 5.0).floor()).collect();
            if n > 9 {
                y[3] = f64::NAN;
                y[n - 2] = f64::NAN;
            }
            let (lo, hi) = argminmax(&y);
            let min = y.iter().copied().fold(f64::INFINITY, f64::min);
            let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(lo, y.iter().position(|&v| v == min).unwrap());
            assert_eq!(hi, y.iter().position(|&v| v == max).unwrap());
            assert_eq!(argminmax_portable(&y), (lo, hi));
        }
        let inf = f64::INFINITY;
        assert_eq!(argminmax(&[inf; 20]), (0, 0));
        let mut y = vec![f64::NAN; 20];
        y[13] = -inf;
        y[17] = -inf;
        assert_eq!(argminmax(&y), (13, 13));
        assert_eq!(argminmax(&[f64::NAN; 11]), (0, 0));
    }

    #[test]
    fn x_bins_with_a_gap() {
        let x: Vec<f64> = (0..100)
            .map(|i| {
                if i > 50 {
                    f64::from(i + 50)
                } else {
                    f64::from(i)
                }
            })
            .collect();
        let y: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(
            minmax(Some(&x), &y, 10).unwrap(),
            vec![0, 29, 30, 50, 51, 69, 70, 99]
        );
    }
}
