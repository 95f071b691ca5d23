//! Exponentially weighted moving average.

use crate::{DspError, check_len};

/// Exponentially weighted moving average with smoothing factor `alpha`, into `out`.
///
/// # Errors
///
/// [`DspError::InvalidAlpha`] unless `0 < alpha <= 1`, [`DspError::LengthMismatch`] if
/// `out` and `x` differ in length.
pub fn ewma_into(x: &[f64], alpha: f64, out: &mut [f64]) -> Result<(), DspError> {
    if !(alpha > 0.0 && alpha <= 1.0) {
        return Err(DspError::InvalidAlpha(alpha));
    }
    check_len(x.len(), out.len())?;
    let decay = 1.0 - alpha;
    let mut average = f64::NAN;
    // Weight of `average` relative to a new sample's weight `alpha`.
    let mut old_weight = 1.0;
    for (&v, slot) in x.iter().zip(out.iter_mut()) {
        // NaN and +/-inf are missing samples (as in pandas).
        let observed = v.is_finite();
        if average.is_nan() {
            // Before the first observation: start from it.
            if observed {
                average = v;
                old_weight = 1.0;
            }
        } else {
            // Every step, observed or not, ages the average.
            old_weight *= decay;
            if observed {
                // Equal values leave the average exactly unchanged (constant input stays
                // exactly constant).
                if average != v {
                    average = (old_weight * average + alpha * v) / (old_weight + alpha);
                }
                old_weight = 1.0;
            }
        }
        *slot = average;
    }
    Ok(())
}

/// Exponentially weighted moving average with smoothing factor `alpha` in `(0, 1]`.
///
/// Same as pandas' `Series.ewm(alpha=alpha, adjust=False).mean()`:
/// `y[0] = x[0]` and `y[t] = (1 - alpha) * y[t-1] + alpha * x[t]`. Missing samples (NaN,
/// and +/-inf as pandas treats them) do not produce NaN: the output carries the previous
/// average, and the gap ages it, i.e. the next observation after `g` steps gets the
/// weight `alpha / ((1 - alpha)^g + alpha)` (pandas' `ignore_na=False`). Outputs before
/// the first observed sample are NaN.
///
/// pandas deviates from this gap rule for `alpha == 0.5` exactly (it then takes the
/// weight `1 - (1 - alpha)^g`); without gaps the results are the same.
///
/// # Errors
///
/// [`DspError::InvalidAlpha`] unless `0 < alpha <= 1`.
pub fn ewma(x: &[f64], alpha: f64) -> Result<Vec<f64>, DspError> {
    let mut out = vec![f64::NAN; x.len()];
    ewma_into(x, alpha, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, assert_close};

    #[test]
    fn invalid_alpha() {
        for alpha in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                ewma(&[1.0], alpha),
                Err(DspError::InvalidAlpha(_))
            ));
        }
        assert!(ewma(&[], 1.0).unwrap().is_empty());
    }

    #[test]
    fn recurrence_without_nan() {
        let mut rng = Lcg::new(5);
        let x: Vec<f64> = (0..500).map(|_| rng.normal()).collect();
        for alpha in [0.01, 0.3, 0.5, 1.0] {
            let y = ewma(&x, alpha).unwrap();
            let mut expected = x[0];
            assert_eq!(y[0], x[0]);
            for i in 1..x.len() {
                expected = (1.0 - alpha) * expected + alpha * x[i];
                assert_close(y[i], expected, 1e-12, "ewma");
            }
        }
    }

    #[test]
    fn nan_gaps() {
        let nan = f64::NAN;
        let y = ewma(&[nan, nan, 2.0, nan, 4.0], 0.5).unwrap();
        assert!(y[0].is_nan() && y[1].is_nan());
        assert_eq!(y[2], 2.0);
        assert_eq!(y[3], 2.0);
        // After a gap of 2 steps the old weight is 0.25: (0.25 * 2 + 0.5 * 4) / 0.75.
        assert_close(y[4], 2.5 / 0.75, 1e-15, "gap");
        assert!(ewma(&[nan; 4], 0.5).unwrap().iter().all(|v| v.is_nan()));
        let inf = f64::INFINITY;
        let y = ewma(&[inf, 1.0, -inf, 3.0], 0.5).unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..3], &[1.0, 1.0]);
        assert_close(y[3], (0.25 + 1.5) / 0.75, 1e-15, "inf gap");
    }

    #[test]
    fn constant_input_is_exact() {
        let y = ewma(&[0.1; 100], 0.3).unwrap();
        assert!(y.iter().all(|&v| v == 0.1));
    }
}
