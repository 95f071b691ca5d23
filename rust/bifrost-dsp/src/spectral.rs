//! Welch power spectral density and per-window vibration features.

use std::f64::consts::PI;

use rayon::prelude::*;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex64;

use crate::DspError;
use crate::features::MIN_MOMENT_VARIANCE;

/// Segments per parallel task: large enough to amortise the FFT plan and buffers.
const SEGMENTS_PER_TASK: usize = 64;

/// Welch's PSD of one signal, as `scipy.signal.welch` with its defaults (periodic Hann
/// window, constant detrending, one-sided density, mean over segments).
///
/// Returns the PSD for the frequencies `k * fs / nperseg`, `k = 0 ..= nperseg / 2`.
/// Segments that hold NaN are left out of the average (all-NaN PSD if every segment
/// does); with no NaN the result is scipy's.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] unless `0 < nperseg <= x.len()`, `noverlap < nperseg`
/// and `fs > 0`.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, noverlap: usize) -> Result<Vec<f64>, DspError> {
    if nperseg == 0 || nperseg > x.len() {
        return Err(DspError::InvalidArgument(
            "nperseg must be between 1 and the length of the signal",
        ));
    }
    if noverlap >= nperseg {
        return Err(DspError::InvalidArgument(
            "noverlap must be less than nperseg",
        ));
    }
    if !(fs.is_finite() && fs > 0.0) {
        return Err(DspError::InvalidArgument(
            "fs must be a positive, finite sampling frequency",
        ));
    }
    let window: Vec<f64> = (0..nperseg)
        .map(|k| 0.5 - 0.5 * (2.0 * PI * k as f64 / nperseg as f64).cos())
        .collect();
    let step = nperseg - noverlap;
    let segments = (x.len() - noverlap) / step;
    let n_freq = nperseg / 2 + 1;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nperseg);
    // Each task sums |X|^2 over its segments; tasks are reduced in a fixed order, so the
    // result does not depend on thread scheduling.
    let partials: Vec<(Vec<f64>, usize)> = (0..segments.div_ceil(SEGMENTS_PER_TASK))
        .into_par_iter()
        .map(|task| {
            let mut buffer = vec![0.0; nperseg];
            let mut spectrum = vec![Complex64::new(0.0, 0.0); n_freq];
            let mut scratch = fft.make_scratch_vec();
            let mut sum = vec![0.0; n_freq];
            let mut used = 0usize;
            let first = task * SEGMENTS_PER_TASK;
            for s in first..(first + SEGMENTS_PER_TASK).min(segments) {
                let segment = &x[s * step..s * step + nperseg];
                let mean = segment.iter().sum::<f64>() / nperseg as f64;
                if mean.is_nan() {
                    continue;
                }
                for ((b, &v), &w) in buffer.iter_mut().zip(segment).zip(&window) {
                    *b = (v - mean) * w;
                }
                if fft
                    .process_with_scratch(&mut buffer, &mut spectrum, &mut scratch)
                    .is_err()
                {
                    // Only a length mismatch fails, and the buffers are sized by the plan.
                    continue;
                }
                for (acc, c) in sum.iter_mut().zip(&spectrum) {
                    *acc += c.norm_sqr();
                }
                used += 1;
            }
            (sum, used)
        })
        .collect();
    let mut psd = vec![0.0; n_freq];
    let mut used = 0usize;
    for (sum, count) in partials {
        for (p, s) in psd.iter_mut().zip(sum) {
            *p += s;
        }
        used += count;
    }
    let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
    let last_doubled = if nperseg % 2 == 0 { n_freq - 1 } else { n_freq };
    for (k, p) in psd.iter_mut().enumerate() {
        let factor = if k > 0 && k < last_doubled { 2.0 } else { 1.0 };
        // 0 / 0 = NaN when no segment was usable.
        *p = *p * scale * factor / used as f64;
    }
    Ok(psd)
}

/// Vibration features of consecutive, non-overlapping windows.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFeatures {
    /// Root mean square of the samples.
    pub rms: Vec<f64>,
    /// Largest absolute sample.
    pub peak: Vec<f64>,
    /// Peak divided by RMS.
    pub crest: Vec<f64>,
    /// Excess (Fisher) kurtosis, biased, as `scipy.stats.kurtosis` by default.
    pub kurtosis: Vec<f64>,
}

/// RMS, peak, crest factor and kurtosis of the `x.len() / window` whole windows of
/// `x` (a trailing partial window is left out). NaN samples are skipped; a window
/// without samples gives NaN, and a constant window has NaN kurtosis (0 / 0), as has one
/// whose variance is below [`MIN_MOMENT_VARIANCE`].
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`.
pub fn window_features(x: &[f64], window: usize) -> Result<WindowFeatures, DspError> {
    if window == 0 {
        return Err(DspError::ZeroWindow);
    }
    let stats: Vec<[f64; 4]> = x
        .par_chunks_exact(window)
        .with_min_len(64)
        .map(|w| {
            let (mut count, mut sum, mut squares, mut peak) = (0usize, 0.0, 0.0, 0.0f64);
            for &v in w.iter().filter(|v| !v.is_nan()) {
                count += 1;
                sum += v;
                squares += v * v;
                peak = peak.max(v.abs());
            }
            if count == 0 {
                return [f64::NAN; 4];
            }
            let n = count as f64;
            let mean = sum / n;
            let (mut m2, mut m4) = (0.0, 0.0);
            for &v in w.iter().filter(|v| !v.is_nan()) {
                let d = (v - mean) * (v - mean);
                m2 += d;
                m4 += d * d;
            }
            let (m2, m4) = (m2 / n, m4 / n);
            let rms = (squares / n).sqrt();
            let kurtosis = if m2 >= MIN_MOMENT_VARIANCE {
                m4 / (m2 * m2) - 3.0
            } else {
                f64::NAN
            };
            [rms, peak, peak / rms, kurtosis]
        })
        .collect();
    Ok(WindowFeatures {
        rms: stats.iter().map(|s| s[0]).collect(),
        peak: stats.iter().map(|s| s[1]).collect(),
        crest: stats.iter().map(|s| s[2]).collect(),
        kurtosis: stats.iter().map(|s| s[3]).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, assert_close};

    /// Direct DFT reference of the Welch estimate.
    fn naive_welch(x: &[f64], fs: f64, nperseg: usize, noverlap: usize) -> Vec<f64> {
        let w: Vec<f64> = (0..nperseg)
            .map(|k| 0.5 - 0.5 * (2.0 * PI * k as f64 / nperseg as f64).cos())
            .collect();
        let step = nperseg - noverlap;
        let segments = (x.len() - noverlap) / step;
        let n_freq = nperseg / 2 + 1;
        let mut psd = vec![0.0; n_freq];
        for s in 0..segments {
            let seg = &x[s * step..s * step + nperseg];
            let mean = seg.iter().sum::<f64>() / nperseg as f64;
            for (k, p) in psd.iter_mut().enumerate() {
                let mut acc = Complex64::new(0.0, 0.0);
                for (j, (&v, &wj)) in seg.iter().zip(&w).enumerate() {
                    let angle = -2.0 * PI * (k * j) as f64 / nperseg as f64;
                    acc += Complex64::from_polar((v - mean) * wj, angle);
                }
                *p += acc.norm_sqr();
            }
        }
        let scale = 1.0 / (fs * w.iter().map(|v| v * v).sum::<f64>() * segments as f64);
        psd.iter()
            .enumerate()
            .map(|(k, p)| {
                let two_sided = k > 0 && (k < n_freq - 1 || nperseg % 2 == 1);
                p * scale * if two_sided { 2.0 } else { 1.0 }
            })
            .collect()
    }

    #[test]
    fn matches_direct_dft() {
        let mut rng = Lcg::new(8);
        let x: Vec<f64> = (0..2000).map(|_| rng.normal() + 3.0).collect();
        for (nperseg, noverlap) in [(64usize, 32usize), (63, 31), (100, 0), (2000, 1000)] {
            let got = welch(&x, 50.0, nperseg, noverlap).unwrap();
            let expected = naive_welch(&x, 50.0, nperseg, noverlap);
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() <= 1e-10 * (1.0 + e.abs()),
                    "{nperseg}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn nan_segments_are_skipped() {
        let mut rng = Lcg::new(9);
        let mut x: Vec<f64> = (0..1024).map(|_| rng.normal()).collect();
        let clean = welch(&x[..512], 1.0, 128, 64).unwrap();
        x[1000] = f64::NAN;
        // Segments starting at 0, 64, ..., 384 lie in x[..512]; later ones that hold
        // x[1000] are skipped, the rest (512..1000) count.
        let with_nan = welch(&x, 1.0, 128, 64).unwrap();
        assert!(with_nan.iter().all(|v| v.is_finite()));
        assert_ne!(clean, with_nan);
        assert!(
            welch(&[f64::NAN; 16], 1.0, 8, 4)
                .unwrap()
                .iter()
                .all(|v| v.is_nan())
        );
    }

    #[test]
    fn welch_errors() {
        assert!(welch(&[1.0; 4], 1.0, 5, 0).is_err());
        assert!(welch(&[1.0; 4], 1.0, 0, 0).is_err());
        assert!(welch(&[1.0; 4], 1.0, 4, 4).is_err());
        assert!(welch(&[1.0; 4], 0.0, 4, 2).is_err());
    }

    #[test]
    fn features_of_a_sine_and_edges() {
        let x: Vec<f64> = (0..4000)
            .map(|i| (2.0 * PI * i as f64 / 100.0).sin())
            .collect();
        let f = window_features(&x, 1000).unwrap();
        assert_eq!(f.rms.len(), 4);
        assert_close(f.rms[0], std::f64::consts::FRAC_1_SQRT_2, 1e-12, "rms");
        assert_close(f.peak[0], 1.0, 1e-12, "peak");
        assert_close(f.crest[0], std::f64::consts::SQRT_2, 1e-12, "crest");
        assert_close(f.kurtosis[0], -1.5, 1e-9, "kurtosis");
        let f = window_features(&[1.0, f64::NAN, 3.0, f64::NAN, f64::NAN, 7.0], 2).unwrap();
        assert_eq!(f.rms[0], 1.0);
        assert!(!f.rms[1].is_nan() && f.kurtosis[0].is_nan());
        assert_eq!(f.peak[2], 7.0);
        let f = window_features(&[f64::NAN; 4], 2).unwrap();
        assert!(f.rms.iter().all(|v| v.is_nan()));
        assert!(window_features(&[1.0], 2).unwrap().rms.is_empty());
        assert_eq!(window_features(&[1.0], 0), Err(DspError::ZeroWindow));
    }
}
