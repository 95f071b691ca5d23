//! Features of arbitrary segments (time windows, machine cycles): moments in one pass and
//! band energies from an averaged spectrum.

use std::f64::consts::PI;

use rayon::prelude::*;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex64;

use crate::DspError;

/// Names of the moment features, in the order of the first columns of
/// [`segment_features`]; the band energies follow.
/// Smallest variance whose skewness and kurtosis are given: below it the third and
/// fourth powers of the deviations fall under the smallest normal `f64` and keep only a
/// few bits, so those two come out as garbage rather than a value; NaN instead.
/// (`sqrt(f64::MIN_POSITIVE)`: a spread of about 1e-77 in the samples' units.)
pub const MIN_MOMENT_VARIANCE: f64 = 1.491_668_146_240_041_3e-154;

pub const MOMENT_FEATURES: [&str; 11] = [
    "count", "mean", "std", "min", "max", "rms", "peak", "crest", "skewness", "kurtosis", "slope",
];

/// How band energies are estimated: the mean periodogram of consecutive blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Bands {
    /// Sampling frequency of the samples inside a block, in Hz.
    pub fs: f64,
    /// Samples per block (each block is one FFT).
    pub block: usize,
    /// `(low, high)` edges of each band in Hz: bins with `low <= f < high`; a band whose
    /// high edge reaches `fs / 2` also holds the Nyquist bin.
    pub edges: Vec<(f64, f64)>,
}

impl Bands {
    fn check(&self) -> Result<(), DspError> {
        if !(self.fs.is_finite() && self.fs > 0.0) {
            return Err(DspError::InvalidArgument(
                "fs must be a positive, finite sampling frequency",
            ));
        }
        if self.block < 2 {
            return Err(DspError::InvalidArgument(
                "a spectrum block needs at least 2 samples",
            ));
        }
        for &(low, high) in &self.edges {
            if !(low.is_finite() && low >= 0.0 && high > low) {
                return Err(DspError::InvalidArgument(
                    "band edges must satisfy 0 <= low < high",
                ));
            }
            if low >= self.fs / 2.0 {
                return Err(DspError::InvalidArgument(
                    "a band starts at or above the Nyquist frequency fs / 2",
                ));
            }
            if self.bins(low, high).is_empty() {
                return Err(DspError::InvalidArgument(
                    "a band holds no frequency bin (narrower than fs / block)",
                ));
            }
        }
        Ok(())
    }

    /// Indices of the one-sided spectrum's bins that fall in `[low, high)`.
    fn bins(&self, low: f64, high: f64) -> std::ops::Range<usize> {
        let n_freq = self.block / 2 + 1;
        let df = self.fs / self.block as f64;
        let first = (0..n_freq)
            .find(|&k| k as f64 * df >= low)
            .unwrap_or(n_freq);
        let last = if high >= self.fs / 2.0 {
            n_freq
        } else {
            (first..n_freq)
                .find(|&k| k as f64 * df >= high)
                .unwrap_or(n_freq)
        };
        first..last.max(first)
    }
}

/// Moment features and band energies of the segments `x[offsets[j]..offsets[j + 1]]`.
///
/// Returns a row-major matrix with one row per segment and the columns
/// [`MOMENT_FEATURES`] followed by one band energy per band:
///
/// * `count`: samples that are not NaN (NaN samples are skipped everywhere);
/// * `mean`, `std` (population, ddof = 0), `min`, `max`;
/// * `rms`, `peak` (largest absolute sample), `crest` (peak / rms);
/// * `skewness` and `kurtosis`: biased, kurtosis in excess (Fisher), as
///   `scipy.stats.skew` and `scipy.stats.kurtosis` by default; NaN for a constant segment
///   and for a variance below [`MIN_MOMENT_VARIANCE`];
/// * `slope`: least-squares slope of the samples against their times `t`, per unit of
///   `t`; NaN with fewer than two distinct times;
/// * band energies: the power (mean square, units squared) in each band of the mean
///   one-sided periodogram of the segment's whole blocks of `bands.block` samples
///   (periodic Hann window, each block minus its mean; blocks holding NaN are left
///   out). A sine of amplitude `A` centred on a bin gives `A^2 / 2` in the band holding
///   it and its neighbours. NaN if the segment has no usable block.
///
/// A segment without samples has count 0 and NaN elsewhere. The moments come from one
/// pass over the samples with Pébay's update formulas, which do not lose precision to
/// an offset the way sums of powers do.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if `t` and `x` differ in length, the offsets decrease
/// or pass the end of `x`, or `bands` is invalid (see [`Bands`]).
pub fn segment_features(
    x: &[f64],
    t: &[f64],
    offsets: &[usize],
    bands: Option<&Bands>,
) -> Result<Vec<f64>, DspError> {
    if t.len() != x.len() {
        return Err(DspError::InvalidArgument(
            "t must have one time per sample of x",
        ));
    }
    if offsets.windows(2).any(|w| w[1] < w[0]) || offsets.last().is_some_and(|&e| e > x.len()) {
        return Err(DspError::InvalidArgument(
            "segment offsets must not decrease nor pass the end of x",
        ));
    }
    if let Some(b) = bands {
        b.check()?;
    }
    let n_bands = bands.map_or(0, |b| b.edges.len());
    let width = MOMENT_FEATURES.len() + n_bands;
    let segments = offsets.len().saturating_sub(1);
    let spectrum = bands.map(Spectrum::new);
    let rows: Vec<Vec<f64>> = (0..segments)
        .into_par_iter()
        .with_min_len(16)
        .map_init(
            || spectrum.as_ref().map(Spectrum::workspace),
            |work, j| {
                let (a, b) = (offsets[j], offsets[j + 1]);
                let mut row = Vec::with_capacity(width);
                row.extend_from_slice(&moments(&x[a..b], &t[a..b]));
                if let (Some(s), Some(w)) = (spectrum.as_ref(), work.as_mut()) {
                    s.band_energies(&x[a..b], w, &mut row);
                }
                row
            },
        )
        .collect();
    Ok(rows.concat())
}

/// The moment features of one segment, in the order of [`MOMENT_FEATURES`].
fn moments(x: &[f64], t: &[f64]) -> [f64; 11] {
    let mut n = 0.0f64;
    let (mut mean, mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0, 0.0);
    let (mut t_mean, mut t_m2, mut co) = (0.0, 0.0, 0.0);
    let (mut squares, mut peak) = (0.0, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (&v, &ti) in x.iter().zip(t) {
        if v.is_nan() {
            continue;
        }
        let n1 = n;
        n += 1.0;
        let delta = v - mean;
        let delta_n = delta / n;
        let delta_n2 = delta_n * delta_n;
        let term = delta * delta_n * n1;
        mean += delta_n;
        m4 += term * delta_n2 * (n * n - 3.0 * n + 3.0) + 6.0 * delta_n2 * m2 - 4.0 * delta_n * m3;
        m3 += term * delta_n * (n - 2.0) - 3.0 * delta_n * m2;
        m2 += term;
        let dt = ti - t_mean;
        t_mean += dt / n;
        t_m2 += dt * (ti - t_mean);
        co += dt * (v - mean);
        squares += v * v;
        peak = peak.max(v.abs());
        min = min.min(v);
        max = max.max(v);
    }
    if n == 0.0 {
        let mut empty = [f64::NAN; 11];
        empty[0] = 0.0;
        return empty;
    }
    let rms = (squares / n).sqrt();
    let (skewness, kurtosis) = if m2 / n >= MIN_MOMENT_VARIANCE {
        (n.sqrt() * m3 / m2.powf(1.5), n * m4 / (m2 * m2) - 3.0)
    } else {
        (f64::NAN, f64::NAN)
    };
    let slope = if t_m2 > 0.0 { co / t_m2 } else { f64::NAN };
    [
        n,
        mean,
        (m2 / n).sqrt(),
        min,
        max,
        rms,
        peak,
        peak / rms,
        skewness,
        kurtosis,
        slope,
    ]
}

/// A planned FFT with its window and bands, shared by every segment.
struct Spectrum {
    fft: std::sync::Arc<dyn realfft::RealToComplex<f64>>,
    window: Vec<f64>,
    /// One-sided density scale of each bin times the bin width: `|X_k|^2 * scale[k]`
    /// is the power of bin `k`.
    scale: Vec<f64>,
    bins: Vec<std::ops::Range<usize>>,
    block: usize,
}

/// Buffers of one worker thread.
struct Workspace {
    buffer: Vec<f64>,
    spectrum: Vec<Complex64>,
    scratch: Vec<Complex64>,
    power: Vec<f64>,
}

impl Spectrum {
    fn new(bands: &Bands) -> Self {
        let n = bands.block;
        let window: Vec<f64> = (0..n)
            .map(|k| 0.5 - 0.5 * (2.0 * PI * k as f64 / n as f64).cos())
            .collect();
        let n_freq = n / 2 + 1;
        // density 1 / (fs * sum w^2), times the bin width fs / n: fs cancels.
        let base = 1.0 / (n as f64 * window.iter().map(|w| w * w).sum::<f64>());
        let last_doubled = if n % 2 == 0 { n_freq - 1 } else { n_freq };
        let scale = (0..n_freq)
            .map(|k| {
                if k > 0 && k < last_doubled {
                    2.0 * base
                } else {
                    base
                }
            })
            .collect();
        Self {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(n),
            window,
            scale,
            bins: bands.edges.iter().map(|&(l, h)| bands.bins(l, h)).collect(),
            block: n,
        }
    }

    fn workspace(&self) -> Workspace {
        Workspace {
            buffer: vec![0.0; self.block],
            spectrum: self.fft.make_output_vec(),
            scratch: self.fft.make_scratch_vec(),
            power: vec![0.0; self.scale.len()],
        }
    }

    /// Appends the energy of every band of `x`'s mean periodogram to `row`.
    fn band_energies(&self, x: &[f64], w: &mut Workspace, row: &mut Vec<f64>) {
        w.power.iter_mut().for_each(|p| *p = 0.0);
        let mut used = 0usize;
        for block in x.chunks_exact(self.block) {
            let mean = block.iter().sum::<f64>() / self.block as f64;
            if mean.is_nan() {
                continue;
            }
            for ((b, &v), &win) in w.buffer.iter_mut().zip(block).zip(&self.window) {
                *b = (v - mean) * win;
            }
            if self
                .fft
                .process_with_scratch(&mut w.buffer, &mut w.spectrum, &mut w.scratch)
                .is_err()
            {
                // Only a length mismatch fails, and the buffers are sized by the plan.
                continue;
            }
            for (p, c) in w.power.iter_mut().zip(&w.spectrum) {
                *p += c.norm_sqr();
            }
            used += 1;
        }
        for bins in &self.bins {
            let total: f64 = bins.clone().map(|k| w.power[k] * self.scale[k]).sum();
            // 0 / 0 = NaN when no block was usable.
            row.push(total / used as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, assert_close};

    const WIDTH: usize = MOMENT_FEATURES.len();

    fn column(rows: &[f64], width: usize, name: &str) -> Vec<f64> {
        let c = MOMENT_FEATURES.iter().position(|&f| f == name).unwrap();
        rows.chunks(width).map(|r| r[c]).collect()
    }

    /// Two-pass reference of the central moments.
    fn reference(x: &[f64]) -> (f64, f64, f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let m = |p: i32| x.iter().map(|v| (v - mean).powi(p)).sum::<f64>() / n;
        (mean, m(2), m(3), m(4))
    }

    #[test]
    fn sine_and_gaussian_noise() {
        let x: Vec<f64> = (0..4000)
            .map(|i| 3.0 * (2.0 * PI * i as f64 / 100.0).sin())
            .collect();
        let t: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
        let f = segment_features(&x, &t, &[0, 2000, 4000], None).unwrap();
        assert_eq!(f.len(), 2 * WIDTH);
        assert_close(f[5], 3.0 * std::f64::consts::FRAC_1_SQRT_2, 1e-12, "rms");
        assert_close(f[6], 3.0, 1e-12, "peak");
        assert_close(f[7], std::f64::consts::SQRT_2, 1e-12, "crest");
        assert_close(f[9], -1.5, 1e-9, "kurtosis");
        let mut rng = Lcg::new(3);
        let noise: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let t: Vec<f64> = (0..noise.len()).map(|i| i as f64).collect();
        let f = segment_features(&noise, &t, &[0, noise.len()], None).unwrap();
        // The sum of 12 uniforms has excess kurtosis -0.1 exactly.
        assert!((f[9] + 0.1).abs() < 0.05, "kurtosis {}", f[9]);
        assert!(f[8].abs() < 0.02, "skewness {}", f[8]);
    }

    #[test]
    fn one_pass_matches_two_passes_despite_an_offset() {
        let mut rng = Lcg::new(5);
        let x: Vec<f64> = (0..999)
            .map(|_| 1e6 + rng.normal() + rng.uniform().powi(3))
            .collect();
        let t: Vec<f64> = (0..x.len()).map(|i| 0.5 * i as f64).collect();
        let f = segment_features(&x, &t, &[0, 999], None).unwrap();
        let (mean, m2, m3, m4) = reference(&x);
        assert_close(f[1], mean, 1e-14, "mean");
        assert_close(f[2], m2.sqrt(), 1e-9, "std");
        assert_close(f[8], m3 / m2.powf(1.5), 1e-6, "skewness");
        assert_close(f[9], m4 / (m2 * m2) - 3.0, 1e-7, "kurtosis");
    }

    #[test]
    fn slope_of_a_line_and_gaps() {
        let t = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0];
        let x = [1.0, 3.0, f64::NAN, 7.0, 5.0, 5.0];
        let f = segment_features(&x, &t, &[0, 4, 4, 5, 6], None).unwrap();
        assert_eq!(column(&f, WIDTH, "slope")[0], 2.0);
        assert_eq!(column(&f, WIDTH, "count"), [3.0, 0.0, 1.0, 1.0]);
        assert!(column(&f, WIDTH, "mean")[1].is_nan());
        assert!(column(&f, WIDTH, "slope")[2].is_nan());
        assert!(column(&f, WIDTH, "kurtosis")[2].is_nan());
        assert_eq!(column(&f, WIDTH, "min")[0], 1.0);
        assert_eq!(column(&f, WIDTH, "max")[0], 7.0);
    }

    #[test]
    fn band_energy_of_a_bin_centred_sine() {
        let (fs, block) = (6400.0, 64usize);
        // 1000 Hz is bin 10 of 100 Hz bins; amplitude 2 -> power 2.
        let x: Vec<f64> = (0..block * 20)
            .map(|i| 0.5 + 2.0 * (2.0 * PI * 1000.0 * i as f64 / fs).sin())
            .collect();
        let t = vec![0.0; x.len()];
        let bands = Bands {
            fs,
            block,
            edges: vec![(0.0, 800.0), (800.0, 1300.0), (1300.0, 3200.0)],
        };
        let f = segment_features(&x, &t, &[0, x.len()], Some(&bands)).unwrap();
        assert_eq!(f.len(), WIDTH + 3);
        assert!(f[WIDTH] < 1e-20, "below the sine: {}", f[WIDTH]);
        assert_close(f[WIDTH + 1], 2.0, 1e-12, "band holding the sine");
        assert!(f[WIDTH + 2] < 1e-20);
    }

    #[test]
    fn bands_of_white_noise_add_up_to_its_variance() {
        let mut rng = Lcg::new(11);
        let x: Vec<f64> = (0..64 * 4000).map(|_| rng.normal()).collect();
        let t = vec![0.0; x.len()];
        let bands = Bands {
            fs: 6400.0,
            block: 64,
            edges: vec![(0.0, 1600.0), (1600.0, 3200.0)],
        };
        let f = segment_features(&x, &t, &[0, x.len()], Some(&bands)).unwrap();
        let total = f[WIDTH] + f[WIDTH + 1];
        assert!((total - 1.0).abs() < 0.03, "total {total}");
        assert!((f[WIDTH] - f[WIDTH + 1]).abs() < 0.05);
    }

    #[test]
    fn blocks_with_nan_are_left_out() {
        let mut x: Vec<f64> = (0..256)
            .map(|i| (2.0 * PI * 800.0 * i as f64 / 6400.0).sin())
            .collect();
        x[70] = f64::NAN;
        let t = vec![0.0; x.len()];
        let bands = Bands {
            fs: 6400.0,
            block: 64,
            edges: vec![(650.0, 1000.0)],
        };
        let f = segment_features(&x, &t, &[0, 256, 256], Some(&bands)).unwrap();
        assert_close(f[WIDTH], 0.5, 1e-12, "sine power");
        assert!(f[2 * WIDTH + 1].is_nan(), "no block, no energy");
    }

    #[test]
    fn invalid_arguments() {
        let x = [1.0, 2.0, 3.0];
        assert!(segment_features(&x, &[0.0; 2], &[0, 3], None).is_err());
        assert!(segment_features(&x, &[0.0; 3], &[2, 1], None).is_err());
        assert!(segment_features(&x, &[0.0; 3], &[0, 4], None).is_err());
        assert!(
            segment_features(&x, &[0.0; 3], &[], None)
                .unwrap()
                .is_empty()
        );
        let bad = |edges: Vec<(f64, f64)>, block: usize| Bands {
            fs: 100.0,
            block,
            edges,
        };
        for b in [
            bad(vec![(60.0, 70.0)], 8),
            bad(vec![(10.0, 5.0)], 8),
            bad(vec![(1.0, 2.0)], 8),
            bad(vec![(0.0, 50.0)], 1),
        ] {
            assert!(segment_features(&x, &[0.0; 3], &[0, 3], Some(&b)).is_err());
        }
        // The Nyquist bin belongs to a band reaching fs / 2.
        let ok = bad(vec![(40.0, 50.0)], 8);
        assert!(segment_features(&x, &[0.0; 3], &[0, 3], Some(&ok)).is_ok());
    }
}
