//! Butterworth design as second-order sections, and SOS filtering (forward and
//! zero-phase), for one channel or many at once.
//!
//! The design follows the textbook route scipy also takes (analog prototype, frequency
//! transform, bilinear transform with pre-warping); the sections may be ordered and
//! paired differently from scipy's, which changes results only at rounding level.
//! Zero-phase filtering matches `scipy.signal.sosfiltfilt` with its default odd
//! padding and steady-state initial conditions.

use std::f64::consts::PI;

use rayon::prelude::*;
use realfft::num_complex::Complex64;

use crate::DspError;

/// One second-order section `[b0, b1, b2, a0, a1, a2]`, as in scipy's `sos` arrays.
pub type Section = [f64; 6];

/// The kind of a Butterworth filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandType {
    /// Passes frequencies below the cutoff.
    Lowpass,
    /// Passes frequencies above the cutoff.
    Highpass,
    /// Passes frequencies between two cutoffs.
    Bandpass,
    /// Rejects frequencies between two cutoffs.
    Bandstop,
}

/// Largest order accepted (numerically sound in second-order sections well beyond that).
pub const MAX_ORDER: usize = 32;

/// Designs a digital Butterworth filter as second-order sections.
///
/// `cutoff` holds one frequency (lowpass, highpass) or two (bandpass, bandstop), in the
/// unit of `fs`, each strictly between 0 and `fs / 2`.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] for an order outside `1..=32`, a non-positive `fs`, a
/// wrong number of cutoffs or a cutoff out of range.
pub fn butter(
    order: usize,
    cutoff: &[f64],
    fs: f64,
    btype: BandType,
) -> Result<Vec<Section>, DspError> {
    if order == 0 || order > MAX_ORDER {
        return Err(DspError::InvalidArgument("order must be between 1 and 32"));
    }
    if !(fs.is_finite() && fs > 0.0) {
        return Err(DspError::InvalidArgument(
            "fs must be a positive, finite sampling frequency",
        ));
    }
    let two_bands = matches!(btype, BandType::Bandpass | BandType::Bandstop);
    if cutoff.len() != if two_bands { 2 } else { 1 } {
        return Err(DspError::InvalidArgument(
            "lowpass and highpass take one cutoff; bandpass and bandstop take two",
        ));
    }
    let nyquist = fs / 2.0;
    if cutoff.iter().any(|&c| !(c > 0.0 && c < nyquist)) {
        return Err(DspError::InvalidArgument(
            "cutoff frequencies must be strictly between 0 and fs / 2",
        ));
    }
    if two_bands && cutoff[0] >= cutoff[1] {
        return Err(DspError::InvalidArgument(
            "the low cutoff must be below the high cutoff",
        ));
    }
    // Pre-warped analog frequencies for the bilinear transform at a sampling rate of 2
    // (normalised frequencies, as scipy does).
    let fs2 = 4.0;
    let warp = |c: f64| fs2 * (PI * (c / nyquist) / 2.0).tan();
    // Analog Butterworth prototype: poles on the left half of the unit circle.
    let prototype: Vec<Complex64> = (0..order)
        .map(|k| {
            let m = 2.0 * k as f64 - order as f64 + 1.0;
            -Complex64::from_polar(1.0, PI * m / (2.0 * order as f64))
        })
        .collect();
    let (zeros, poles, gain) = match btype {
        BandType::Lowpass => {
            let wo = warp(cutoff[0]);
            let poles: Vec<Complex64> = prototype.iter().map(|p| p * wo).collect();
            (Vec::new(), poles, wo.powi(order as i32))
        }
        BandType::Highpass => {
            let wo = warp(cutoff[0]);
            let poles: Vec<Complex64> = prototype.iter().map(|p| wo / p).collect();
            let product: Complex64 = prototype.iter().map(|p| -p).product();
            (
                vec![Complex64::new(0.0, 0.0); order],
                poles,
                (1.0 / product).re,
            )
        }
        BandType::Bandpass => {
            let (w1, w2) = (warp(cutoff[0]), warp(cutoff[1]));
            let (bw, wo) = (w2 - w1, (w1 * w2).sqrt());
            let mut poles = Vec::with_capacity(2 * order);
            for p in &prototype {
                let scaled = p * (bw / 2.0);
                let root = (scaled * scaled - wo * wo).sqrt();
                poles.push(scaled + root);
                poles.push(scaled - root);
            }
            (
                vec![Complex64::new(0.0, 0.0); order],
                poles,
                bw.powi(order as i32),
            )
        }
        BandType::Bandstop => {
            let (w1, w2) = (warp(cutoff[0]), warp(cutoff[1]));
            let (bw, wo) = (w2 - w1, (w1 * w2).sqrt());
            let mut poles = Vec::with_capacity(2 * order);
            let mut zeros = Vec::with_capacity(2 * order);
            for p in &prototype {
                let scaled = (bw / 2.0) / p;
                let root = (scaled * scaled - wo * wo).sqrt();
                poles.push(scaled + root);
                poles.push(scaled - root);
                zeros.push(Complex64::new(0.0, wo));
                zeros.push(Complex64::new(0.0, -wo));
            }
            let product: Complex64 = prototype.iter().map(|p| -p).product();
            (zeros, poles, (1.0 / product).re)
        }
    };
    // Bilinear transform; zeros at infinity map to z = -1.
    let bilinear = |s: &Complex64| (fs2 + s) / (fs2 - s);
    let mut z_digital: Vec<Complex64> = zeros.iter().map(bilinear).collect();
    z_digital.resize(poles.len(), Complex64::new(-1.0, 0.0));
    let p_digital: Vec<Complex64> = poles.iter().map(bilinear).collect();
    let num: Complex64 = zeros.iter().map(|z| fs2 - z).product();
    let den: Complex64 = poles.iter().map(|p| fs2 - p).product();
    let k = gain * (num / den).re;
    Ok(to_sections(&z_digital, &p_digital, k))
}

/// Groups zeros and poles into sections: conjugate pairs together, real ones two by
/// two; sections ordered by pole radius so the sharpest resonance comes last.
fn to_sections(zeros: &[Complex64], poles: &[Complex64], gain: f64) -> Vec<Section> {
    let tol = 1e-12;
    let pairs = |roots: &[Complex64]| -> Vec<(Complex64, Option<Complex64>)> {
        let mut upper: Vec<Complex64> = roots.iter().copied().filter(|r| r.im > tol).collect();
        let mut real: Vec<f64> = roots
            .iter()
            .filter(|r| r.im.abs() <= tol)
            .map(|r| r.re)
            .collect();
        upper.sort_by(|a, b| a.norm().total_cmp(&b.norm()));
        real.sort_by(f64::total_cmp);
        let mut out: Vec<(Complex64, Option<Complex64>)> =
            upper.into_iter().map(|r| (r, Some(r.conj()))).collect();
        // Pair the smallest real root with the largest (for bandpass, +1 with -1).
        let (mut lo, mut hi) = (0usize, real.len());
        while hi > lo {
            if hi - lo >= 2 {
                out.push((
                    Complex64::new(real[lo], 0.0),
                    Some(Complex64::new(real[hi - 1], 0.0)),
                ));
                lo += 1;
                hi -= 1;
            } else {
                out.push((Complex64::new(real[lo], 0.0), None));
                lo += 1;
            }
        }
        out
    };
    let mut pole_pairs = pairs(poles);
    // Real poles first, then by radius (closest to the unit circle last), as scipy does.
    pole_pairs.sort_by(|a, b| a.0.norm().total_cmp(&b.0.norm()));
    let zero_pairs = pairs(zeros);
    let poly = |pair: &(Complex64, Option<Complex64>)| -> [f64; 3] {
        match pair.1 {
            Some(other) => [1.0, -(pair.0 + other).re, (pair.0 * other).re],
            None => [1.0, -pair.0.re, 0.0],
        }
    };
    let mut sections: Vec<Section> = pole_pairs
        .iter()
        .enumerate()
        .map(|(i, pp)| {
            let a = poly(pp);
            let b = zero_pairs.get(i).map_or([1.0, 0.0, 0.0], poly);
            [b[0], b[1], b[2], a[0], a[1], a[2]]
        })
        .collect();
    for value in &mut sections[0][..3] {
        *value *= gain;
    }
    sections
}

/// Coefficients normalised by `a0`: `[b0, b1, b2, a1, a2]`.
type Coefficients = [f64; 5];

fn normalise(sos: &[Section]) -> Result<Vec<Coefficients>, DspError> {
    if sos.is_empty() {
        return Err(DspError::InvalidArgument(
            "sos must hold at least one section",
        ));
    }
    sos.iter()
        .map(|s| {
            if s.iter().any(|v| !v.is_finite()) || s[3] == 0.0 {
                return Err(DspError::InvalidArgument(
                    "sos coefficients must be finite with a0 != 0",
                ));
            }
            let a0 = s[3];
            Ok([s[0] / a0, s[1] / a0, s[2] / a0, s[4] / a0, s[5] / a0])
        })
        .collect()
}

/// Direct-form-I filtering of `L` channels in place, over the samples of `rows` in
/// the given direction.
///
/// `hist[k]` holds the last two samples (`[n-1, n-2]`) of the signal entering section
/// `k` (`hist[S]` the output of the last section), lane by lane. Direct form I keeps
/// only one multiply-subtract on the loop-carried path (`y[n-1] -> y[n]`), shorter than
/// the transposed form's; the `L` lanes are independent chains the CPU overlaps.
#[inline(always)]
fn run_lanes<const L: usize, const FORWARD: bool>(
    coef: &[Coefficients],
    hist: &mut [[[f64; L]; 2]],
    rows: &mut [&mut [f64]; L],
) {
    // A fixed number of sections keeps the whole state in registers; through memory,
    // store-to-load forwarding would lengthen the loop-carried path.
    match coef.len() {
        1 => run_fixed::<L, 1, FORWARD>(coef, hist, rows),
        2 => run_fixed::<L, 2, FORWARD>(coef, hist, rows),
        3 => run_fixed::<L, 3, FORWARD>(coef, hist, rows),
        4 => run_fixed::<L, 4, FORWARD>(coef, hist, rows),
        _ => run_dynamic::<L, FORWARD>(coef, hist, rows),
    }
}

#[inline(always)]
fn section_step<const L: usize>(
    c: &Coefficients,
    input: &[f64; L],
    x: &[[f64; L]; 2],
    y: &[[f64; L]; 2],
) -> [f64; L] {
    let [b0, b1, b2, a1, a2] = *c;
    std::array::from_fn(|lane| {
        let partial = b0 * input[lane] + b1 * x[0][lane] + b2 * x[1][lane] - a2 * y[1][lane];
        partial - a1 * y[0][lane]
    })
}

#[inline(always)]
fn run_fixed<const L: usize, const S: usize, const FORWARD: bool>(
    coef: &[Coefficients],
    hist: &mut [[[f64; L]; 2]],
    rows: &mut [&mut [f64]; L],
) {
    let n = rows[0].len();
    let c: [Coefficients; S] = std::array::from_fn(|k| coef[k]);
    let mut state: [[[f64; L]; 2]; 5] = [[[0.0; L]; 2]; 5];
    state[..=S].copy_from_slice(&hist[..=S]);
    for step in 0..n {
        let i = if FORWARD { step } else { n - 1 - step };
        let mut signal: [f64; L] = std::array::from_fn(|lane| rows[lane][i]);
        for k in 0..S {
            let output = section_step(&c[k], &signal, &state[k], &state[k + 1]);
            state[k] = [signal, state[k][0]];
            signal = output;
        }
        state[S] = [signal, state[S][0]];
        for lane in 0..L {
            rows[lane][i] = signal[lane];
        }
    }
    hist[..=S].copy_from_slice(&state[..=S]);
}

#[inline(always)]
fn run_dynamic<const L: usize, const FORWARD: bool>(
    coef: &[Coefficients],
    hist: &mut [[[f64; L]; 2]],
    rows: &mut [&mut [f64]; L],
) {
    let n = rows[0].len();
    let sections = coef.len();
    for step in 0..n {
        let i = if FORWARD { step } else { n - 1 - step };
        let mut signal: [f64; L] = std::array::from_fn(|lane| rows[lane][i]);
        for k in 0..sections {
            let output = section_step(&coef[k], &signal, &hist[k], &hist[k + 1]);
            hist[k] = [signal, hist[k][0]];
            signal = output;
        }
        hist[sections] = [signal, hist[sections][0]];
        for lane in 0..L {
            rows[lane][i] = signal[lane];
        }
    }
}

/// Steady-state history for a constant input `level` per lane (scipy's `sosfilt_zi`
/// scaled by the first sample).
fn steady_state<const L: usize>(
    coef: &[Coefficients],
    level: [f64; L],
) -> Result<Vec<[[f64; L]; 2]>, DspError> {
    let mut hist = Vec::with_capacity(coef.len() + 1);
    let mut value = level;
    hist.push([value, value]);
    for &[b0, b1, b2, a1, a2] in coef {
        let denominator = 1.0 + a1 + a2;
        if denominator == 0.0 {
            return Err(DspError::InvalidArgument(
                "a section has a pole at z = 1; it has no steady state",
            ));
        }
        let gain = (b0 + b1 + b2) / denominator;
        for v in &mut value {
            *v *= gain;
        }
        hist.push([value, value]);
    }
    Ok(hist)
}

/// Default padding of `scipy.signal.sosfiltfilt`.
pub fn default_padlen(sos: &[Section]) -> usize {
    let b2_zero = sos.iter().filter(|s| s[2] == 0.0).count();
    let a2_zero = sos.iter().filter(|s| s[5] == 0.0).count();
    3 * (2 * sos.len() + 1 - b2_zero.min(a2_zero))
}

/// Zero-phase filtering of `L` rows in place (odd padding of `padlen` samples).
#[inline(always)]
fn filtfilt_lanes<const L: usize>(
    coef: &[Coefficients],
    rows: &mut [&mut [f64]; L],
    padlen: usize,
) -> Result<(), DspError> {
    let n = rows[0].len();
    // Odd extensions `2 * x[0] - x[padlen..=1]` and `2 * x[n-1] - x[n-2..=n-1-padlen]`.
    let mut left: [Vec<f64>; L] = std::array::from_fn(|lane| {
        let x = &rows[lane];
        (0..padlen).map(|j| 2.0 * x[0] - x[padlen - j]).collect()
    });
    let mut right: [Vec<f64>; L] = std::array::from_fn(|lane| {
        let x = &rows[lane];
        (0..padlen).map(|j| 2.0 * x[n - 1] - x[n - 2 - j]).collect()
    });
    let first: [f64; L] = std::array::from_fn(|lane| {
        if padlen > 0 {
            left[lane][0]
        } else {
            rows[lane][0]
        }
    });
    let mut hist = steady_state(coef, first)?;
    {
        let mut pads: [&mut [f64]; L] = left.each_mut().map(|v| v.as_mut_slice());
        run_lanes::<L, true>(coef, &mut hist, &mut pads);
    }
    run_lanes::<L, true>(coef, &mut hist, rows);
    {
        let mut pads: [&mut [f64]; L] = right.each_mut().map(|v| v.as_mut_slice());
        run_lanes::<L, true>(coef, &mut hist, &mut pads);
    }
    let last: [f64; L] = std::array::from_fn(|lane| {
        if padlen > 0 {
            right[lane][padlen - 1]
        } else {
            rows[lane][n - 1]
        }
    });
    let mut hist = steady_state(coef, last)?;
    {
        let mut pads: [&mut [f64]; L] = right.each_mut().map(|v| v.as_mut_slice());
        run_lanes::<L, false>(coef, &mut hist, &mut pads);
    }
    run_lanes::<L, false>(coef, &mut hist, rows);
    // NaN or an infinity anywhere propagates through both passes to the first output.
    if rows.iter().any(|row| !row[0].is_finite()) {
        return Err(DspError::NotFinite("sosfiltfilt"));
    }
    Ok(())
}

/// Channels interleaved per thread: enough independent chains to hide the latency of
/// one chain (about 8 cycles per sample) on a 2-wide FP pipeline.
const LANES: usize = 4;

/// Forward filtering of `LANES` rows from rest, with AVX2 when the CPU has it (Rust never
/// fuses multiply-adds, so the results are bit-identical to the baseline build).
fn sosfilt4(coef: &[Coefficients], rows: &mut [&mut [f64]; LANES]) {
    let mut hist = vec![[[0.0; LANES]; 2]; coef.len() + 1];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { run_lanes_avx2(coef, &mut hist, rows) };
        return;
    }
    run_lanes::<LANES, true>(coef, &mut hist, rows);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_lanes_avx2(
    coef: &[Coefficients],
    hist: &mut [[[f64; LANES]; 2]],
    rows: &mut [&mut [f64]; LANES],
) {
    run_lanes::<LANES, true>(coef, hist, rows);
}

/// Zero-phase filtering of `LANES` rows, with AVX2 when the CPU has it (same results).
fn filtfilt4(
    coef: &[Coefficients],
    rows: &mut [&mut [f64]; LANES],
    padlen: usize,
) -> Result<(), DspError> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { filtfilt_avx2(coef, rows, padlen) };
    }
    filtfilt_lanes::<LANES>(coef, rows, padlen)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn filtfilt_avx2(
    coef: &[Coefficients],
    rows: &mut [&mut [f64]; LANES],
    padlen: usize,
) -> Result<(), DspError> {
    filtfilt_lanes::<LANES>(coef, rows, padlen)
}

/// Work on a group of rows (filtered in place).
type RowWork<'a> = dyn Fn(&mut [&mut [f64]]) -> Result<(), DspError> + Sync + 'a;

/// Runs `body` on groups of rows (`LANES` at a time, then singles), in parallel.
///
/// With a non-empty `src` (as long as `data`), each task first copies its rows from
/// `src` into `data`, so the copy runs in parallel too.
fn for_row_groups(
    data: &mut [f64],
    src: &[f64],
    n: usize,
    body: &RowWork<'_>,
) -> Result<(), DspError> {
    if n == 0 {
        return Ok(());
    }
    let rows = data.len() / n;
    let grouped = rows / LANES * LANES * n;
    let (head, tail) = data.split_at_mut(grouped);
    let work = |(chunk, offset): (&mut [f64], usize)| -> Result<(), DspError> {
        if !src.is_empty() {
            chunk.copy_from_slice(&src[offset..offset + chunk.len()]);
        }
        let mut group: Vec<&mut [f64]> = chunk.chunks_mut(n).collect();
        body(&mut group)
    };
    if rows > 1 {
        head.par_chunks_mut(LANES * n)
            .enumerate()
            .map(|(k, c)| (c, k * LANES * n))
            .chain(
                tail.par_chunks_mut(n)
                    .enumerate()
                    .map(|(k, c)| (c, grouped + k * n)),
            )
            .try_for_each(work)
    } else {
        tail.chunks_mut(n)
            .enumerate()
            .map(|(k, c)| (c, grouped + k * n))
            .try_for_each(work)
    }
}

fn as_lanes<'a, const L: usize>(group: &'a mut [&mut [f64]]) -> [&'a mut [f64]; L] {
    let mut iter = group.iter_mut();
    std::array::from_fn(|_| &mut **iter.next().expect("group holds L rows"))
}

fn check_rows(len: usize, n: usize) -> Result<(), DspError> {
    if n == 0 && len == 0 || n > 0 && len % n == 0 {
        Ok(())
    } else {
        Err(DspError::InvalidArgument(
            "the data length must be a multiple of the row length",
        ))
    }
}

/// Filters rows of `n` samples (row-major in `data`) forward, in place, from rest
/// (`scipy.signal.sosfilt` without `zi`). Rows run in parallel.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] for invalid sections or a length that is not a
/// multiple of `n`; [`DspError::NotFinite`] if a row holds NaN or an infinity.
pub fn sosfilt_rows(sos: &[Section], data: &mut [f64], n: usize) -> Result<(), DspError> {
    sosfilt_impl(sos, &[], data, n)
}

/// [`sosfilt_rows`] of the rows of `src`, written to `out` (same length): the copy is
/// made by the parallel tasks, each for its own rows.
///
/// # Errors
///
/// As [`sosfilt_rows`]; [`DspError::LengthMismatch`] if `out` and `src` differ in length.
pub fn sosfilt_rows_from(
    sos: &[Section],
    src: &[f64],
    out: &mut [f64],
    n: usize,
) -> Result<(), DspError> {
    crate::check_len(src.len(), out.len())?;
    sosfilt_impl(sos, src, out, n)
}

fn sosfilt_impl(sos: &[Section], src: &[f64], data: &mut [f64], n: usize) -> Result<(), DspError> {
    let coef = normalise(sos)?;
    check_rows(data.len(), n)?;
    let body = |group: &mut [&mut [f64]]| -> Result<(), DspError> {
        if group.len() == LANES {
            sosfilt4(&coef, &mut as_lanes::<LANES>(group));
        } else {
            let mut hist = vec![[[0.0; 1]; 2]; coef.len() + 1];
            run_lanes::<1, true>(&coef, &mut hist, &mut as_lanes::<1>(group));
        }
        if group.iter().any(|row| row.iter().any(|v| !v.is_finite())) {
            return Err(DspError::NotFinite("sosfilt"));
        }
        Ok(())
    };
    for_row_groups(data, src, n, &body)
}

/// Zero-phase filtering of rows of `n` samples in place, like
/// `scipy.signal.sosfiltfilt(sos, x, padtype="odd", padlen=padlen)`; `padlen = None`
/// takes scipy's default. Rows run in parallel.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] for invalid sections or a length that is not a
/// multiple of `n`; [`DspError::TooShort`] if `n <= padlen`; [`DspError::NotFinite`]
/// if a row holds NaN or an infinity.
pub fn sosfiltfilt_rows(
    sos: &[Section],
    data: &mut [f64],
    n: usize,
    padlen: Option<usize>,
) -> Result<(), DspError> {
    sosfiltfilt_impl(sos, &[], data, n, padlen)
}

/// [`sosfiltfilt_rows`] of the rows of `src`, written to `out` (same length): the copy
/// is made by the parallel tasks, each for its own rows.
///
/// # Errors
///
/// As [`sosfiltfilt_rows`]; [`DspError::LengthMismatch`] if `out` and `src` differ in
/// length.
pub fn sosfiltfilt_rows_from(
    sos: &[Section],
    src: &[f64],
    out: &mut [f64],
    n: usize,
    padlen: Option<usize>,
) -> Result<(), DspError> {
    crate::check_len(src.len(), out.len())?;
    sosfiltfilt_impl(sos, src, out, n, padlen)
}

fn sosfiltfilt_impl(
    sos: &[Section],
    src: &[f64],
    data: &mut [f64],
    n: usize,
    padlen: Option<usize>,
) -> Result<(), DspError> {
    let coef = normalise(sos)?;
    check_rows(data.len(), n)?;
    let padlen = padlen.unwrap_or_else(|| default_padlen(sos));
    if data.is_empty() {
        return Ok(());
    }
    if n <= padlen {
        return Err(DspError::TooShort {
            what: "sosfiltfilt (the padding)",
            needed: padlen,
            got: n,
        });
    }
    let body = |group: &mut [&mut [f64]]| -> Result<(), DspError> {
        if group.len() == LANES {
            filtfilt4(&coef, &mut as_lanes::<LANES>(group), padlen)
        } else {
            filtfilt_lanes::<1>(&coef, &mut as_lanes::<1>(group), padlen)
        }
    };
    for_row_groups(data, src, n, &body)
}

/// Zero-phase filtering of one signal (see [`sosfiltfilt_rows`]).
///
/// # Errors
///
/// As [`sosfiltfilt_rows`].
pub fn sosfiltfilt(
    sos: &[Section],
    x: &[f64],
    padlen: Option<usize>,
) -> Result<Vec<f64>, DspError> {
    let mut out = x.to_vec();
    sosfiltfilt_rows(sos, &mut out, x.len(), padlen)?;
    Ok(out)
}

/// Forward filtering of one signal from rest (see [`sosfilt_rows`]).
///
/// # Errors
///
/// As [`sosfilt_rows`].
pub fn sosfilt(sos: &[Section], x: &[f64]) -> Result<Vec<f64>, DspError> {
    let mut out = x.to_vec();
    sosfilt_rows(sos, &mut out, x.len())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, assert_close};

    /// Magnitude of the frequency response at `f` (in units of `fs`).
    fn response(sos: &[Section], f: f64, fs: f64) -> f64 {
        let z = Complex64::from_polar(1.0, -2.0 * PI * f / fs);
        sos.iter()
            .map(|s| {
                let num = s[0] + s[1] * z + s[2] * z * z;
                let den = s[3] + s[4] * z + s[5] * z * z;
                (num / den).norm()
            })
            .product()
    }

    #[test]
    fn butterworth_responses() {
        let fs = 1000.0;
        for order in 1..=8 {
            let lp = butter(order, &[100.0], fs, BandType::Lowpass).unwrap();
            assert_eq!(lp.len(), order.div_ceil(2));
            assert_close(response(&lp, 0.0, fs), 1.0, 1e-12, "lp dc");
            assert_close(
                response(&lp, 100.0, fs),
                std::f64::consts::FRAC_1_SQRT_2,
                1e-9,
                "lp -3dB",
            );
            assert!(response(&lp, 499.0, fs) < 1e-2);
            let hp = butter(order, &[100.0], fs, BandType::Highpass).unwrap();
            assert!(response(&hp, 0.0, fs) < 1e-12);
            assert_close(
                response(&hp, 100.0, fs),
                std::f64::consts::FRAC_1_SQRT_2,
                1e-9,
                "hp",
            );
            assert_close(response(&hp, 500.0, fs), 1.0, 1e-9, "hp nyquist");
            let bp = butter(order, &[50.0, 200.0], fs, BandType::Bandpass).unwrap();
            assert_eq!(bp.len(), order);
            assert_close(
                response(&bp, 50.0, fs),
                std::f64::consts::FRAC_1_SQRT_2,
                1e-9,
                "bp lo",
            );
            assert_close(
                response(&bp, 200.0, fs),
                std::f64::consts::FRAC_1_SQRT_2,
                1e-9,
                "bp hi",
            );
            assert!(response(&bp, 0.0, fs) < 1e-9);
            let bs = butter(order, &[50.0, 200.0], fs, BandType::Bandstop).unwrap();
            assert_close(response(&bs, 0.0, fs), 1.0, 1e-9, "bs dc");
            assert_close(
                response(&bs, 50.0, fs),
                std::f64::consts::FRAC_1_SQRT_2,
                1e-9,
                "bs lo",
            );
        }
    }

    #[test]
    fn design_errors() {
        let lp = BandType::Lowpass;
        assert!(butter(0, &[1.0], 10.0, lp).is_err());
        assert!(butter(33, &[1.0], 10.0, lp).is_err());
        assert!(butter(2, &[5.0], 10.0, lp).is_err());
        assert!(butter(2, &[0.0], 10.0, lp).is_err());
        assert!(butter(2, &[1.0], -10.0, lp).is_err());
        assert!(butter(2, &[1.0, 2.0], 10.0, lp).is_err());
        assert!(butter(2, &[2.0, 1.0], 10.0, BandType::Bandpass).is_err());
        assert!(butter(2, &[2.0], 10.0, BandType::Bandstop).is_err());
    }

    /// Straightforward transposed-direct-form reference of one section cascade.
    fn reference_sosfilt(sos: &[Section], x: &[f64], zi: &[[f64; 2]]) -> Vec<f64> {
        let mut z = zi.to_vec();
        x.iter()
            .map(|&v| {
                let mut s = v;
                for (k, c) in sos.iter().enumerate() {
                    let y = c[0] * s + z[k][0];
                    z[k][0] = c[1] * s - c[4] * y + z[k][1];
                    z[k][1] = c[2] * s - c[5] * y;
                    s = y;
                }
                s
            })
            .collect()
    }

    #[test]
    fn forward_matches_reference_for_many_rows() {
        let mut rng = Lcg::new(3);
        let sos = butter(5, &[30.0], 250.0, BandType::Lowpass).unwrap();
        let n = 300;
        for rows in [1usize, 3, 4, 9] {
            let data: Vec<f64> = (0..rows * n).map(|_| rng.normal()).collect();
            let mut out = data.clone();
            sosfilt_rows(&sos, &mut out, n).unwrap();
            let zero = vec![[0.0; 2]; sos.len()];
            for r in 0..rows {
                let expected = reference_sosfilt(&sos, &data[r * n..(r + 1) * n], &zero);
                for (a, e) in out[r * n..(r + 1) * n].iter().zip(&expected) {
                    assert!((a - e).abs() < 1e-12, "row {r}");
                }
            }
        }
    }

    #[test]
    fn filtfilt_of_constant_is_constant_and_rows_agree() {
        let sos = butter(4, &[10.0], 100.0, BandType::Lowpass).unwrap();
        let y = sosfiltfilt(&sos, &[2.5; 50], None).unwrap();
        assert!(y.iter().all(|v| (v - 2.5).abs() < 1e-12));
        let mut rng = Lcg::new(4);
        let n = 200;
        let data: Vec<f64> = (0..6 * n).map(|_| rng.normal()).collect();
        let mut all = data.clone();
        sosfiltfilt_rows(&sos, &mut all, n, None).unwrap();
        for r in 0..6 {
            let one = sosfiltfilt(&sos, &data[r * n..(r + 1) * n], None).unwrap();
            assert_eq!(&all[r * n..(r + 1) * n], one.as_slice());
        }
    }

    #[test]
    fn from_variants_match_in_place() {
        let sos = butter(4, &[10.0], 100.0, BandType::Lowpass).unwrap();
        let mut rng = Lcg::new(5);
        let n = 300;
        for rows in [1usize, 4, 9] {
            let data: Vec<f64> = (0..rows * n).map(|_| rng.normal()).collect();
            let mut in_place = data.clone();
            sosfiltfilt_rows(&sos, &mut in_place, n, None).unwrap();
            let mut out = vec![0.0; data.len()];
            sosfiltfilt_rows_from(&sos, &data, &mut out, n, None).unwrap();
            assert_eq!(out, in_place);
            let mut in_place = data.clone();
            sosfilt_rows(&sos, &mut in_place, n).unwrap();
            let mut out = vec![0.0; data.len()];
            sosfilt_rows_from(&sos, &data, &mut out, n).unwrap();
            assert_eq!(out, in_place);
        }
        let mut short = vec![0.0; 3];
        assert!(matches!(
            sosfilt_rows_from(&sos, &[1.0; 4], &mut short, 4),
            Err(DspError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn filtfilt_errors() {
        let sos = butter(4, &[10.0], 100.0, BandType::Lowpass).unwrap();
        assert_eq!(default_padlen(&sos), 15);
        assert!(matches!(
            sosfiltfilt(&sos, &[1.0; 15], None),
            Err(DspError::TooShort {
                needed: 15,
                got: 15,
                ..
            })
        ));
        let mut x = vec![1.0; 100];
        x[40] = f64::NAN;
        assert!(matches!(
            sosfiltfilt(&sos, &x, None),
            Err(DspError::NotFinite(_))
        ));
        assert!(matches!(sosfilt(&sos, &x), Err(DspError::NotFinite(_))));
        assert!(sosfiltfilt(&sos, &[], None).unwrap().is_empty());
        assert!(sosfilt(&[[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], &[1.0]).is_err());
        let odd = butter(3, &[10.0], 100.0, BandType::Lowpass).unwrap();
        assert_eq!(default_padlen(&odd), 12);
        assert_eq!(sosfiltfilt(&odd, &[1.0; 13], Some(0)).unwrap().len(), 13);
    }
}
