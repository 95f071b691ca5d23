//! Downsampling for plots: MinMax, M4, LTTB and MinMaxLTTB, returning sample indices.
//!
//! The bins follow tsdownsample's conventions so that the selected indices are the
//! same: without `x`, `n_bins` bins of `(n - 1) / n_bins` samples over the index; with
//! `x` (sorted ascending), bins of equal width in `x`. NaN samples are never selected
//! unless a whole bin is NaN (then its first sample stands in).

use crate::DspError;
use crate::share::map_shared;

/// Inputs at least this long are scanned by several threads.
const PARALLEL_FROM: usize = 1 << 18;

/// Bins per claim of the shared scan: a few hundred thousand samples, so that a helper
/// that is descheduled mid-chunk holds the caller up briefly.
const BINS_PER_CHUNK: usize = 64;

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

/// Samples of `x` per piece of the validation pass: small enough to stay in L2 while
/// the bin edges inside the piece are searched.
const PIECE: usize = 1 << 14;

/// Whether `x[a..b]` is ascending, including the pair across its end
/// (`x[b - 1] <= x[b]`), NaN never: with its two ends finite, all of `x` is.
fn piece_ok(x: &[f64], a: usize, b: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { piece_ok_avx2(x, a, b) };
        }
    }
    piece_ok_portable(x, a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn piece_ok_avx2(x: &[f64], a: usize, b: usize) -> bool {
    piece_ok_portable(x, a, b)
}

/// Branch-free lanes that vectorise (a comparison and an "or" per pair).
#[inline(always)]
fn piece_ok_portable(x: &[f64], a: usize, b: usize) -> bool {
    let first = &x[a..b.min(x.len() - 1)];
    let next = &x[a + 1..a + 1 + first.len()];
    const L: usize = 16;
    let mut ok = [true; L];
    let whole = first.len() / L * L;
    for (p, q) in first[..whole]
        .chunks_exact(L)
        .zip(next[..whole].chunks_exact(L))
    {
        for j in 0..L {
            // False for NaN on either side.
            ok[j] &= p[j] <= q[j];
        }
    }
    let tail_ok = first[whole..]
        .iter()
        .zip(&next[whole..])
        .all(|(&p, &q)| p <= q);
    ok.iter().all(|&v| v) && tail_ok
}

/// Whether the ends of non-empty `x` are finite: with every pair ascending, all of `x`
/// is then finite.
fn ends_finite(x: &[f64]) -> bool {
    x[0].is_finite() && x[x.len() - 1].is_finite()
}

/// Runs `task` on every piece of `x` (shared with free pool threads when long), `None`
/// if one returns `None`, else the pieces' results in order.
fn by_piece<T: Send + 'static>(
    x: &[f64],
    task: impl Fn(usize, usize) -> Option<T> + Sync,
) -> Option<Vec<T>> {
    let pieces = x.len().div_ceil(PIECE);
    let run = |p: usize| task(p * PIECE, ((p + 1) * PIECE).min(x.len()));
    if x.len() >= PARALLEL_FROM {
        map_shared(pieces, 1, &run).into_iter().collect()
    } else {
        (0..pieces).map(run).collect()
    }
}

/// Whether every `x` is finite and none is below its predecessor.
fn finite_and_sorted(x: &[f64]) -> bool {
    x.is_empty() || ends_finite(x) && by_piece(x, |a, b| piece_ok(x, a, b).then_some(())).is_some()
}

/// `n_bins` bins of equal width between `x[0]` and `x[n - 1]`; `None` unless `x` is
/// finite and sorted ascending (checked on the way).
///
/// One pass over `x` in pieces: each piece is validated, then the bin edges that fall
/// inside it are searched while it is in cache (a search over all of `x` per edge would
/// miss the cache at every step).
fn x_bins(x: &[f64], n_bins: usize, close_last: bool) -> Option<Vec<Bin>> {
    let n = x.len();
    if !ends_finite(x) {
        return None;
    }
    let x0 = x[0];
    // Divided first so that the difference cannot overflow.
    let step = x[n - 1] / n_bins as f64 - x0 / n_bins as f64;
    // Non-decreasing in i (step >= 0 for sorted x; rounding is monotone).
    let edge = |i: usize| x0 + step * (i + 1) as f64;
    let edges: Vec<usize> = (0..n_bins).collect();
    // Per piece [a, b): for each edge e with x[a] <= e < x[b], the number of samples
    // <= e (in a + 1..=b) and the sample there (infinite past the end).
    let found = by_piece(x, |a, b| {
        if !piece_ok(x, a, b) {
            return None;
        }
        let above = if b < n { x[b] } else { f64::INFINITY };
        let k0 = edges.partition_point(|&k| edge(k) < x[a]);
        let k1 = edges.partition_point(|&k| edge(k) < above).max(k0);
        let cuts: Vec<(usize, usize, f64)> = (k0..k1)
            .map(|k| {
                let e = edge(k);
                let cut = a + 1 + x[a + 1..b].partition_point(|&v| v <= e);
                (k, cut, if cut < n { x[cut] } else { f64::INFINITY })
            })
            .collect();
        Some(cuts)
    })?;
    // Edges below x[0] cut nothing off.
    let mut cuts = vec![(0usize, x0); n_bins];
    for (k, cut, at) in found.into_iter().flatten() {
        cuts[k] = (cut, at);
    }
    let mut idx = 0usize;
    let mut x_idx = x0;
    let bins = (0..n_bins)
        .map(|i| {
            let start = idx;
            if start >= n || x_idx >= edge(i) {
                return None;
            }
            // First index after the edge (bisect right). As in tsdownsample, MinMax
            // leaves the last sample out when the last edge rounds below x[n - 1]; M4
            // does not.
            if close_last && i + 1 == n_bins {
                idx = n;
            } else {
                (idx, x_idx) = cuts[i];
            }
            Some((start, idx))
        })
        .collect();
    Some(bins)
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

/// Samples per block of the AVX2 scan: its lanes remember the block where they last
/// improved, and the final search for the first extreme covers one block.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 32;
/// Samples ahead of the scan that each block asks the cache for (8 KiB): on one thread
/// the 10M-sample MinMaxLTTB measured 15-25 % faster than with the hardware prefetcher
/// alone (1/4/8/16/32 KiB tried; 8-32 KiB alike).
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 1024;

/// AVX2 version, one pass at memory speed: per block of [`BLOCK`] samples a tree of
/// vector min/max (no dependency chain), then each lane keeps its extreme and the start
/// of the first block where it reached it (strict comparisons: first occurrence, NaN
/// skipped). The first extreme lies in the earliest such block of the winning lanes,
/// which is searched afterwards (it is in cache).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn argminmax_avx2(y: &[f64]) -> (usize, usize) {
    use std::arch::x86_64::{
        __m256d, _CMP_GT_OQ, _CMP_LT_OQ, _MM_HINT_T0, _mm_prefetch, _mm256_blendv_pd,
        _mm256_cmp_pd, _mm256_loadu_pd, _mm256_max_pd, _mm256_min_pd, _mm256_set1_pd,
        _mm256_storeu_pd,
    };
    const W: usize = 4;
    let vectors = y.len() / W * W;
    let mut lo = _mm256_set1_pd(f64::INFINITY);
    let mut hi = _mm256_set1_pd(f64::NEG_INFINITY);
    // Block starts as f64 (exact below 2^53), so that they blend like the values.
    let mut lo_at = _mm256_set1_pd(0.0);
    let mut hi_at = _mm256_set1_pd(0.0);
    let load = |i: usize| -> __m256d {
        debug_assert!(i + W <= vectors);
        // SAFETY: callers pass `i + W <= vectors <= y.len()`.
        unsafe { _mm256_loadu_pd(y.as_ptr().add(i)) }
    };
    let mut start = 0;
    while start + BLOCK <= vectors {
        // The four cache lines of the block PREFETCH samples ahead; a prefetch never
        // faults, so addresses past the slice are harmless.
        for line in 0..BLOCK / 8 {
            let ahead = y.as_ptr().wrapping_add(start + PREFETCH + line * 8);
            _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
        }
        let v: [__m256d; 8] = std::array::from_fn(|k| load(start + k * W));
        // With a NaN operand min/max return the second operand, so each chain starts
        // from an infinity and carries its result as the second operand: NaN is skipped
        // (an all-NaN lane keeps its infinity, which compares false below).
        let mut bmin = [_mm256_set1_pd(f64::INFINITY); 2];
        let mut bmax = [_mm256_set1_pd(f64::NEG_INFINITY); 2];
        for (k, &vk) in v.iter().enumerate() {
            bmin[k % 2] = _mm256_min_pd(vk, bmin[k % 2]);
            bmax[k % 2] = _mm256_max_pd(vk, bmax[k % 2]);
        }
        let bmin = _mm256_min_pd(bmin[0], bmin[1]);
        let bmax = _mm256_max_pd(bmax[0], bmax[1]);
        let at = _mm256_set1_pd(start as f64);
        let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(bmin, lo);
        lo = _mm256_blendv_pd(lo, bmin, lower);
        lo_at = _mm256_blendv_pd(lo_at, at, lower);
        let higher = _mm256_cmp_pd::<_CMP_GT_OQ>(bmax, hi);
        hi = _mm256_blendv_pd(hi, bmax, higher);
        hi_at = _mm256_blendv_pd(hi_at, at, higher);
        start += BLOCK;
    }
    // The last vectors, one block each.
    while start < vectors {
        let v = load(start);
        let at = _mm256_set1_pd(start as f64);
        let lower = _mm256_cmp_pd::<_CMP_LT_OQ>(v, lo);
        lo = _mm256_blendv_pd(lo, v, lower);
        lo_at = _mm256_blendv_pd(lo_at, at, lower);
        let higher = _mm256_cmp_pd::<_CMP_GT_OQ>(v, hi);
        hi = _mm256_blendv_pd(hi, v, higher);
        hi_at = _mm256_blendv_pd(hi_at, at, higher);
        start += W;
    }
    let lanes = |v: __m256d| -> [f64; W] {
        let mut out = [0.0; W];
        // SAFETY: `out` has room for W values.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) };
        out
    };
    // First index of `target` in the block starting at the earliest `at` of the lanes
    // holding it; `None` when no lane improved on its start value.
    let locate = |ext: [f64; W], at: [f64; W], target: f64| -> Option<usize> {
        let block = (0..W)
            .filter(|&j| ext[j] == target)
            .map(|j| at[j] as usize)
            .min()?;
        let end = (block + BLOCK).min(vectors);
        y[block..end]
            .iter()
            .position(|&v| v == target)
            .map(|j| block + j)
    };
    let (lo, lo_at, hi, hi_at) = (lanes(lo), lanes(lo_at), lanes(hi), lanes(hi_at));
    let min = lo.iter().copied().fold(f64::INFINITY, f64::min);
    let max = hi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut best_lo = if min < f64::INFINITY {
        locate(lo, lo_at, min).map(|i| (min, i))
    } else {
        None
    };
    let mut best_hi = if max > f64::NEG_INFINITY {
        locate(hi, hi_at, max).map(|i| (max, i))
    } else {
        None
    };
    for (j, &v) in y[vectors..].iter().enumerate() {
        if v < best_lo.map_or(f64::INFINITY, |(b, _)| b) {
            best_lo = Some((v, vectors + j));
        }
        if v > best_hi.map_or(f64::NEG_INFINITY, |(b, _)| b) {
            best_hi = Some((v, vectors + j));
        }
    }
    // Infinite extremes equal to the start values never register; find them (or give
    // the first sample when everything is NaN).
    let find = |target: f64| y.iter().position(|&v| v == target).unwrap_or(0);
    let lo_index = best_lo.map_or_else(|| find(f64::INFINITY), |(_, i)| i);
    let hi_index = best_hi.map_or_else(|| find(f64::NEG_INFINITY), |(_, i)| i);
    (lo_index, hi_index)
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

fn check_len(x: &[f64], n: usize) -> Result<(), DspError> {
    if x.len() != n {
        return Err(DspError::LengthMismatch {
            input: n,
            output: x.len(),
        });
    }
    Ok(())
}

/// The error of an `x` that is not finite and sorted (not finite takes precedence).
fn x_error(x: &[f64]) -> DspError {
    if x.iter().any(|v| !v.is_finite()) {
        DspError::NotFinite("x of a downsampling")
    } else {
        DspError::InvalidArgument("x must be sorted in ascending order")
    }
}

fn check_x(x: &[f64], n: usize) -> Result<(), DspError> {
    check_len(x, n)?;
    if finite_and_sorted(x) {
        Ok(())
    } else {
        Err(x_error(x))
    }
}

/// The bins, `None` if `x` is not finite and sorted.
fn bins_for(x: Option<&[f64]>, n: usize, n_bins: usize, close_last: bool) -> Option<Vec<Bin>> {
    match x {
        Some(x) => x_bins(x, n_bins, close_last),
        None => Some(index_bins(n, n_bins)),
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
        check_len(x, y.len())?;
        if n_out >= y.len() {
            check_x(x, y.len())?;
        }
    }
    minmax_checking_x(x, y, n_out).ok_or_else(|| x_error(x.unwrap_or_default()))
}

/// MinMax without parameter checks; `None` if `x` (of the right length) is not finite
/// and sorted, which is only checked when `n_out < n`.
fn minmax_checking_x(x: Option<&[f64]>, y: &[f64], n_out: usize) -> Option<Vec<usize>> {
    let n = y.len();
    if n_out >= n {
        return Some((0..n).collect());
    }
    let bins = bins_for(x, n, n_out / 2, false)?;
    let pick = |&(start, end): &(usize, usize)| -> [usize; 2] {
        let (lo, hi) = argminmax(&y[start..end]);
        [start + lo.min(hi), start + lo.max(hi)]
    };
    // Two threads read memory faster than one; below a few hundred thousand samples the
    // hand-off costs more than it saves.
    let present: Vec<(usize, usize)> = bins.iter().flatten().copied().collect();
    let picked: Vec<[usize; 2]> = if n >= PARALLEL_FROM {
        map_shared(present.len(), BINS_PER_CHUNK, &|i| pick(&present[i]))
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
    Some(out)
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
    let n = y.len();
    if let Some(x) = x {
        check_len(x, n)?;
        if n_out >= n {
            check_x(x, n)?;
        }
    }
    if n_out >= n {
        return Ok((0..n).collect());
    }
    let bins = bins_for(x, n, n_out / 4, true).ok_or_else(|| x_error(x.unwrap_or_default()))?;
    let mut out = Vec::with_capacity(n_out);
    for (start, end) in bins.into_iter().flatten() {
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
    let n = y.len();
    if n / n_out <= ratio {
        if let Some(x) = x {
            check_x(x, n)?;
        }
        return Ok(lttb_unchecked(x, y, n_out));
    }
    if let Some(x) = x {
        check_len(x, n)?;
        // The preselection checks the inner samples; here the two ends.
        let ends_ok =
            x[0].is_finite() && x[n - 1].is_finite() && x[0] <= x[1] && x[n - 2] <= x[n - 1];
        if !ends_ok {
            return Err(x_error(x));
        }
    }
    let inner_x = x.map(|x| &x[1..n - 1]);
    // n >= n_out * (ratio + 1), so the preselection is shorter than the inner samples
    // and checks them.
    let inner = minmax_checking_x(inner_x, &y[1..n - 1], n_out * ratio)
        .ok_or_else(|| x_error(x.unwrap_or_default()))?;
    let mut index = Vec::with_capacity(n_out * ratio + 2);
    index.push(0);
    index.extend(inner.into_iter().map(|i| i + 1));
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

    /// First index of the minimum and maximum by brute force (NaN skipped, the first
    /// sample when everything is NaN).
    fn naive_argminmax(y: &[f64]) -> (usize, usize) {
        let min = y.iter().copied().fold(f64::INFINITY, f64::min);
        let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let find = |t: f64| y.iter().position(|&v| v == t).unwrap_or(0);
        (find(min), find(max))
    }

    #[test]
    fn argminmax_agrees_with_brute_force() {
        // Few distinct values (many ties), NaN runs, infinities, and every length around
        // the vector and block sizes.
        let mut rng = Lcg::new(3);
        for n in (1usize..140).chain([255, 256, 257, 1250, 1251, 4099]) {
            for pattern in 0..6 {
                let y: Vec<f64> = (0..n)
                    .map(|i| {
                        let u = rng.uniform();
                        match pattern {
                            0 => (u * 4.0).floor(),
                            1 if u < 0.3 => f64::NAN,
                            2 if i % 4 == 0 || u < 0.1 => f64::NAN,
                            3 if u < 0.9 => f64::NAN,
                            4 if u < 0.05 => f64::INFINITY,
                            4 if u < 0.1 => f64::NEG_INFINITY,
                            5 => -((u * 3.0).floor()),
                            _ => (u * 7.0).floor() - 3.0,
                        }
                    })
                    .collect();
                let expected = naive_argminmax(&y);
                assert_eq!(argminmax(&y), expected, "n={n} pattern={pattern}");
                assert_eq!(argminmax_portable(&y), expected, "n={n} pattern={pattern}");
            }
        }
        // Signed zeros compare equal: the first zero of either sign is the extreme.
        let mut y = vec![1.0; 70];
        y[40] = 0.0;
        y[5] = -0.0;
        assert_eq!(argminmax(&y).0, 5);
    }

    /// The bins of equal width in x by a binary search over the rest of x per edge.
    fn naive_x_bins(x: &[f64], n_bins: usize, close_last: bool) -> Vec<Bin> {
        let n = x.len();
        let x0 = x[0];
        let step = x[n - 1] / n_bins as f64 - x0 / n_bins as f64;
        let mut idx = 0usize;
        (0..n_bins)
            .map(|i| {
                let start = idx;
                let edge = x0 + step * (i + 1) as f64;
                if start >= n || x[start] >= edge {
                    return None;
                }
                idx = if close_last && i + 1 == n_bins {
                    n
                } else {
                    start + x[start..].partition_point(|&v| v <= edge)
                };
                Some((start, idx))
            })
            .collect()
    }

    #[test]
    fn x_bins_agree_with_binary_search() {
        let mut rng = Lcg::new(4);
        // Integer x (samples exactly on edges, repeats), gaps, and lengths across the
        // piece size and the parallel threshold.
        for (n, kind) in [
            (2usize, 0),
            (3, 1),
            (100, 0),
            (1000, 1),
            (PIECE - 1, 2),
            (PIECE + 1, 0),
            (3 * PIECE + 7, 1),
            (PARALLEL_FROM + 12_345, 2),
        ] {
            let mut x: Vec<f64> = (0..n)
                .map(|i| match kind {
                    0 => (rng.uniform() * 200.0).floor(),
                    1 => rng.uniform() * 1e3,
                    _ => i as f64 + if i > n / 3 { 5e4 } else { 0.0 },
                })
                .collect();
            x.sort_by(f64::total_cmp);
            for n_bins in [1usize, 2, 7, 10, 100, 4000] {
                for close_last in [false, true] {
                    assert_eq!(
                        x_bins(&x, n_bins, close_last).unwrap(),
                        naive_x_bins(&x, n_bins, close_last),
                        "n={n} kind={kind} n_bins={n_bins}"
                    );
                }
            }
            if n > 10 {
                let mut bad = x.clone();
                bad[n - 2] = f64::NAN;
                assert!(x_bins(&bad, 10, false).is_none());
                bad[n - 2] = x[n - 1] + 1.0;
                assert!(x_bins(&bad, 10, false).is_none());
                assert!(!finite_and_sorted(&bad));
            }
        }
    }

    #[test]
    fn x_errors_at_the_ends_and_inside() {
        let y: Vec<f64> = (0..200).map(f64::from).collect();
        let x = y.clone();
        for (i, v) in [
            (0, f64::NAN),
            (0, 5.0),
            (199, 1.0),
            (199, f64::INFINITY),
            (100, 0.0),
        ] {
            let mut bad = x.clone();
            bad[i] = v;
            let finite = v.is_finite();
            for result in [
                minmaxlttb(Some(&bad), &y, 10, 4),
                minmax(Some(&bad), &y, 10),
                m4(Some(&bad), &y, 12),
                lttb(Some(&bad), &y, 10),
            ] {
                match result {
                    Err(DspError::NotFinite(_)) => assert!(!finite, "i={i} v={v}"),
                    Err(DspError::InvalidArgument(_)) => assert!(finite, "i={i} v={v}"),
                    other => panic!("i={i} v={v}: {other:?}"),
                }
            }
        }
        assert!(minmaxlttb(Some(&x[..199]), &y, 10, 4).is_err());
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
