//! Rolling mean and rolling (sample) standard deviation.
//!
//! Both use the same block scheme ("two stacks"): the input is cut into blocks of
//! `window` samples, starting at index 0. A window ending at `i` is a suffix of the
//! block before `i`'s block followed by a prefix of `i`'s block (or exactly one block).
//! Suffix sums of the previous block are computed once per block (O(window) every
//! `window` samples) and the prefix sums are accumulated as `i` advances, so the total
//! cost is O(n). Sums are only ever added to, never subtracted from, so no rounding
//! error is carried from one window to the next (a spike leaving the window leaves no
//! trace).
//!
//! The samples are shifted by the first sample of `i`'s block, which belongs to every
//! window ending in that block: with a large offset (`1e9 + noise`) the shifted values
//! are small and exact, the sums of squares do not cancel catastrophically, and a window
//! of equal samples sums to exactly 0 (mean exactly the sample, std exactly 0).
//!
//! Several blocks are processed at once, one per SIMD lane (independent add chains,
//! plain arrays the compiler vectorises), and groups of blocks run in parallel. A
//! window holding a missing sample (NaN, +/-inf) gets a non-finite sum; a final pass,
//! run only when some block held one, turns exactly those windows into NaN.

use rayon::prelude::*;

use crate::{DspError, check_window};

/// Blocks processed together, one per lane.
const LANES: usize = 4;

/// Inputs shorter than this run on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Statistic finished from the shifted sums of a full window.
#[derive(Clone, Copy)]
struct Finish {
    /// `1 / window`.
    inv_w: f64,
    /// `1 / (window - 1)` (std only).
    inv_wm1: f64,
}

impl Finish {
    /// Mean from the shift `c` and the sum of shifted samples `s1`.
    #[inline(always)]
    fn mean(&self, c: f64, s1: f64) -> f64 {
        c + s1 * self.inv_w
    }

    /// Sample standard deviation from the sums of shifted samples and their squares.
    #[inline(always)]
    fn std(&self, s1: f64, s2: f64) -> f64 {
        let var = (s2 - s1 * s1 * self.inv_w) * self.inv_wm1;
        // Rounding can make a tiny variance negative; NaN (a missing sample) stays NaN.
        let var = if var < 0.0 { 0.0 } else { var };
        var.sqrt()
    }
}

/// Scratch space of [`lanes`]: suffix sums (`w + 1` each) and lane-interleaved copies
/// of the blocks and outputs (`3 * w`).
struct Buffers<const L: usize> {
    suf1: Vec<[f64; L]>,
    suf2: Vec<[f64; L]>,
    scratch: Vec<[f64; L]>,
}

/// Windows ending in `L` full blocks at once: `prev[l]` is the block before the `l`-th
/// one, `cur[l]` the block itself and `out[l]` its outputs (all `w` long). Returns
/// whether a block sum was not finite (a missing sample, or an overflow).
#[inline(always)]
fn lanes<const L: usize, const STD: bool>(
    prev: [&[f64]; L],
    cur: [&[f64]; L],
    out: [&mut [f64]; L],
    w: usize,
    f: Finish,
    buffers: &mut Buffers<L>,
) -> bool {
    let Buffers {
        suf1,
        suf2,
        scratch,
    } = buffers;
    let prev: [&[f64]; L] = std::array::from_fn(|l| &prev[l][..w]);
    let cur: [&[f64]; L] = std::array::from_fn(|l| &cur[l][..w]);
    let out = out.map(|o| &mut o[..w]);
    let suf1 = &mut suf1[..=w];
    let suf2 = &mut suf2[..=w];
    let c: [f64; L] = std::array::from_fn(|l| cur[l][0]);
    // Lane-interleaved copies (one contiguous [f64; L] per sample) so that the
    // arithmetic below runs on whole vectors.
    let (tp, rest) = scratch.split_at_mut(w);
    let (tc, to) = rest.split_at_mut(w);
    let to = &mut to[..w];
    for (j, (a, b)) in tp.iter_mut().zip(tc.iter_mut()).enumerate() {
        *a = std::array::from_fn(|l| prev[l][j]);
        *b = std::array::from_fn(|l| cur[l][j]);
    }
    // suf[j] = sum of the shifted prev[j..w]; suf[w] = 0 (index 0 is never used).
    let mut a1 = [0.0; L];
    let mut a2 = [0.0; L];
    suf1[w] = a1;
    suf2[w] = a2;
    for j in (1..w).rev() {
        let y: [f64; L] = std::array::from_fn(|l| tp[j][l] - c[l]);
        a1 = std::array::from_fn(|l| a1[l] + y[l]);
        suf1[j] = a1;
        if STD {
            a2 = std::array::from_fn(|l| a2[l] + y[l] * y[l]);
            suf2[j] = a2;
        }
    }
    let mut p1 = [0.0; L];
    let mut p2 = [0.0; L];
    for off in 0..w {
        let s1 = suf1[off + 1];
        let y: [f64; L] = std::array::from_fn(|l| tc[off][l] - c[l]);
        p1 = std::array::from_fn(|l| p1[l] + y[l]);
        if STD {
            let s2 = suf2[off + 1];
            p2 = std::array::from_fn(|l| p2[l] + y[l] * y[l]);
            to[off] = std::array::from_fn(|l| f.std(p1[l] + s1[l], p2[l] + s2[l]));
        } else {
            to[off] = std::array::from_fn(|l| f.mean(c[l], p1[l] + s1[l]));
        }
    }
    for (j, o) in to.iter().enumerate() {
        for l in 0..L {
            out[l][j] = o[l];
        }
    }
    // A missing sample makes its block's sum (and the shifted squares) non-finite.
    (0..L).any(|l| !(p1[l].is_finite() && p2[l].is_finite()))
}

/// Windows ending in one block that may be the first (`prev` empty: only the window
/// ending at its last sample is full) or the last (`cur` shorter than `w`).
fn edge_block<const STD: bool>(
    prev: &[f64],
    cur: &[f64],
    out: &mut [f64],
    w: usize,
    f: Finish,
) -> bool {
    let c = cur[0];
    let mut suf = vec![(0.0, 0.0); w + 1];
    if !prev.is_empty() {
        let (mut a1, mut a2) = (0.0, 0.0);
        for j in (1..w).rev() {
            let y = prev[j] - c;
            a1 += y;
            a2 += y * y;
            suf[j] = (a1, a2);
        }
    }
    let (mut p1, mut p2) = (0.0, 0.0);
    for (off, (&v, o)) in cur.iter().zip(out.iter_mut()).enumerate() {
        let y = v - c;
        p1 += y;
        p2 += y * y;
        if prev.is_empty() && off + 1 < w {
            *o = f64::NAN;
            continue;
        }
        let (s1, s2) = suf[off + 1];
        *o = if STD {
            f.std(p1 + s1, p2 + s2)
        } else {
            f.mean(c, p1 + s1)
        };
    }
    !(p1.is_finite() && p2.is_finite())
}

/// Blocks `first ..` whose outputs are `out` (starting at `first * w`), `x` the whole
/// input. Returns whether a block held a non-finite sum.
fn run_blocks<const STD: bool>(
    x: &[f64],
    w: usize,
    f: Finish,
    first: usize,
    out: &mut [f64],
) -> bool {
    let mut bad = false;
    let mut block = first;
    let mut out = out;
    if block == 0 {
        let len = w.min(out.len());
        let (head, rest) = out.split_at_mut(len);
        bad |= edge_block::<STD>(&[], &x[..len], head, w, f);
        out = rest;
        block = 1;
    }
    let full = out.len() / w;
    let (body, tail) = out.split_at_mut(full * w);
    let mut buffers = Buffers {
        suf1: vec![[0.0; LANES]; w + 1],
        suf2: vec![[0.0; LANES]; w + 1],
        scratch: vec![[0.0; LANES]; 3 * w],
    };
    let mut groups = body.chunks_exact_mut(LANES * w);
    for group in &mut groups {
        let mut rows = group.chunks_exact_mut(w);
        let out: [&mut [f64]; LANES] =
            std::array::from_fn(|_| rows.next().expect("a group holds LANES blocks"));
        let prev: [&[f64]; LANES] =
            std::array::from_fn(|l| &x[(block + l - 1) * w..(block + l) * w]);
        let cur: [&[f64]; LANES] =
            std::array::from_fn(|l| &x[(block + l) * w..(block + l + 1) * w]);
        bad |= if STD {
            lanes_std(prev, cur, out, w, f, &mut buffers)
        } else {
            lanes_mean(prev, cur, out, w, f, &mut buffers)
        };
        block += LANES;
    }
    for row in groups.into_remainder().chunks_exact_mut(w) {
        let prev = &x[(block - 1) * w..block * w];
        let cur = &x[block * w..(block + 1) * w];
        bad |= edge_block::<STD>(prev, cur, row, w, f);
        block += 1;
    }
    if !tail.is_empty() {
        let prev = &x[(block - 1) * w..block * w];
        let cur = &x[block * w..block * w + tail.len()];
        bad |= edge_block::<STD>(prev, cur, tail, w, f);
    }
    bad
}

/// [`lanes`] for the mean, with AVX2 when the CPU has it (same results: no FMA).
fn lanes_mean(
    prev: [&[f64]; LANES],
    cur: [&[f64]; LANES],
    out: [&mut [f64]; LANES],
    w: usize,
    f: Finish,
    buffers: &mut Buffers<LANES>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { lanes_avx2::<false>(prev, cur, out, w, f, buffers) };
    }
    lanes::<LANES, false>(prev, cur, out, w, f, buffers)
}

/// [`lanes`] for the standard deviation, with AVX2 when the CPU has it.
fn lanes_std(
    prev: [&[f64]; LANES],
    cur: [&[f64]; LANES],
    out: [&mut [f64]; LANES],
    w: usize,
    f: Finish,
    buffers: &mut Buffers<LANES>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { lanes_avx2::<true>(prev, cur, out, w, f, buffers) };
    }
    lanes::<LANES, true>(prev, cur, out, w, f, buffers)
}

/// [`lanes`] compiled for AVX2 (Rust never fuses multiply-adds, so the results are
/// bit-identical to the baseline build).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_avx2<const STD: bool>(
    prev: [&[f64]; LANES],
    cur: [&[f64]; LANES],
    out: [&mut [f64]; LANES],
    w: usize,
    f: Finish,
    buffers: &mut Buffers<LANES>,
) -> bool {
    lanes::<LANES, STD>(prev, cur, out, w, f, buffers)
}

/// Shared driver of the rolling mean and standard deviation.
fn rolling<const STD: bool>(x: &[f64], window: usize, out: &mut [f64]) {
    let n = x.len();
    if window > n {
        out.fill(f64::NAN);
        return;
    }
    let w = window;
    let f = Finish {
        inv_w: 1.0 / w as f64,
        inv_wm1: if w > 1 {
            1.0 / (w - 1) as f64
        } else {
            f64::NAN
        },
    };
    let blocks = n.div_ceil(w);
    let bad = if n < PARALLEL_MIN || blocks < 2 * LANES {
        run_blocks::<STD>(x, w, f, 0, out)
    } else {
        // Tasks of whole groups of blocks; a few per thread so a busy core does not
        // hold the others up.
        let tasks = 4 * rayon::current_num_threads();
        let per_task = blocks.div_ceil(tasks).div_ceil(LANES).max(1) * LANES;
        out.par_chunks_mut(per_task * w)
            .enumerate()
            .map(|(k, chunk)| run_blocks::<STD>(x, w, f, k * per_task, chunk))
            .reduce(|| false, |a, b| a | b)
    };
    if bad {
        missing_windows(x, w, out);
    }
}

/// Sets to NaN every output whose window holds a missing sample (NaN, +/-inf).
fn missing_windows(x: &[f64], w: usize, out: &mut [f64]) {
    let mut last_missing: Option<usize> = None;
    for (i, (&v, o)) in x.iter().zip(out.iter_mut()).enumerate() {
        if !v.is_finite() {
            last_missing = Some(i);
        }
        if last_missing.is_some_and(|m| i - m < w) {
            *o = f64::NAN;
        }
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
    rolling::<false>(x, window, out);
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
    // Zeroed memory comes from the OS untouched: the kernel's writes are the first.
    let mut out = vec![0.0; x.len()];
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
    rolling::<true>(x, window, out);
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
    let mut out = vec![0.0; x.len()];
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
        let as_nan: Vec<f64> = x
            .iter()
            .map(|&v| if v.is_finite() { v } else { f64::NAN })
            .collect();
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
    fn parallel_blocks_match_one_sequential_pass() {
        // Long enough for the parallel path (several tasks, groups of LANES blocks, a
        // partial last block); NaN and inf in some blocks.
        let mut rng = Lcg::new(11);
        let mut x: Vec<f64> = (0..PARALLEL_MIN * 3 + 77)
            .map(|_| rng.normal() * 5.0 + 100.0)
            .collect();
        x[5000] = f64::NAN;
        x[123_456] = f64::INFINITY;
        for w in [1usize, 2, 37, 1000, 4096] {
            let f = Finish {
                inv_w: 1.0 / w as f64,
                inv_wm1: 1.0 / (w as f64 - 1.0),
            };
            let mean = rolling_mean(&x, w).unwrap();
            let mut sequential = vec![0.0; x.len()];
            if run_blocks::<false>(&x, w, f, 0, &mut sequential) {
                missing_windows(&x, w, &mut sequential);
            }
            for (a, b) in mean.iter().zip(&sequential) {
                assert!(a == b || (a.is_nan() && b.is_nan()), "w={w}");
            }
            let std = rolling_std(&x, w).unwrap();
            for i in (0..x.len())
                .step_by(611)
                .chain([5000, 5000 + w, 123_456 + w - 1])
            {
                let i = i.min(x.len() - 1);
                // Windows holding inf are missing (NaN), not inf.
                let expected = naive_window(&x, w, i, naive_mean);
                let expected = if expected.is_finite() {
                    expected
                } else {
                    f64::NAN
                };
                assert_close(mean[i], expected, 1e-12, "mean");
                let expected = if w == 1 {
                    f64::NAN
                } else {
                    naive_window(&x, w, i, naive_std)
                };
                let expected = if expected.is_finite() {
                    expected
                } else {
                    f64::NAN
                };
                assert_close(std[i], expected, 1e-9, "std");
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
