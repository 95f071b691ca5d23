//! Rolling minimum and maximum with a monotonic deque (O(n) whatever the window).

use std::collections::VecDeque;

use crate::{DspError, check_window};

/// Rolling extreme: `keeps(older, newer)` is true when an older sample can still be the
/// answer once `newer` has arrived (i.e. it is strictly better).
fn rolling_extreme(
    x: &[f64],
    window: usize,
    out: &mut [f64],
    keeps: impl Fn(f64, f64) -> bool,
) -> Result<(), DspError> {
    check_window(x.len(), window, out.len())?;
    out.fill(f64::NAN);
    if window > x.len() {
        return Ok(());
    }
    // Indices of the finite samples of the window, their values strictly monotonic
    // from front (the answer) to back.
    let mut deque: VecDeque<usize> = VecDeque::with_capacity(window.min(x.len()));
    // Last sample that is missing (NaN or +/-inf, as in pandas).
    let mut last_missing: Option<usize> = None;
    for (i, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            last_missing = Some(i);
        } else {
            while deque.back().is_some_and(|&j| !keeps(x[j], v)) {
                deque.pop_back();
            }
            deque.push_back(i);
        }
        if i + 1 < window {
            continue;
        }
        let start = i + 1 - window;
        while deque.front().is_some_and(|&j| j < start) {
            deque.pop_front();
        }
        let holds_missing = last_missing.is_some_and(|j| j >= start);
        out[i] = match deque.front() {
            Some(&j) if !holds_missing => x[j],
            _ => f64::NAN,
        };
    }
    Ok(())
}

/// Rolling minimum over a trailing window, written into `out`.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`, [`DspError::LengthMismatch`] if `out` and
/// `x` differ in length.
pub fn rolling_min_into(x: &[f64], window: usize, out: &mut [f64]) -> Result<(), DspError> {
    rolling_extreme(x, window, out, |older, newer| older < newer)
}

/// Rolling minimum over a trailing window of `window` samples.
///
/// Same as pandas' `Series.rolling(window, min_periods=window).min()`: a window holding
/// a NaN or an infinity gives NaN.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`.
pub fn rolling_min(x: &[f64], window: usize) -> Result<Vec<f64>, DspError> {
    let mut out = vec![f64::NAN; x.len()];
    rolling_min_into(x, window, &mut out)?;
    Ok(out)
}

/// Rolling maximum over a trailing window, written into `out`.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`, [`DspError::LengthMismatch`] if `out` and
/// `x` differ in length.
pub fn rolling_max_into(x: &[f64], window: usize, out: &mut [f64]) -> Result<(), DspError> {
    rolling_extreme(x, window, out, |older, newer| older > newer)
}

/// Rolling maximum over a trailing window of `window` samples.
///
/// Same as pandas' `Series.rolling(window, min_periods=window).max()`: a window holding
/// a NaN or an infinity gives NaN.
///
/// # Errors
///
/// [`DspError::ZeroWindow`] if `window == 0`.
pub fn rolling_max(x: &[f64], window: usize) -> Result<Vec<f64>, DspError> {
    let mut out = vec![f64::NAN; x.len()];
    rolling_max_into(x, window, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Lcg, naive_window};

    fn naive_min(w: &[f64]) -> f64 {
        if w.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        w.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn naive_max(w: &[f64]) -> f64 {
        if w.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        w.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    fn same(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn errors() {
        assert_eq!(rolling_min(&[1.0], 0), Err(DspError::ZeroWindow));
        assert_eq!(rolling_max(&[], 0), Err(DspError::ZeroWindow));
        let mut out = [0.0; 1];
        assert!(matches!(
            rolling_max_into(&[1.0, 2.0], 1, &mut out),
            Err(DspError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn small_example() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let mn = rolling_min(&x, 3).unwrap();
        let mx = rolling_max(&x, 3).unwrap();
        assert!(mn[..2].iter().all(|v| v.is_nan()));
        assert_eq!(&mn[2..], &[1.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(&mx[2..], &[4.0, 4.0, 5.0, 9.0, 9.0, 9.0]);
        assert_eq!(rolling_min(&x, 1).unwrap(), x.to_vec());
        assert!(rolling_max(&x, 9).unwrap().iter().all(|v| v.is_nan()));
        assert!(rolling_min(&[], 2).unwrap().is_empty());
    }

    #[test]
    fn matches_naive_with_nans_and_ties() {
        let mut rng = Lcg::new(11);
        for n in [1usize, 5, 100, 700] {
            // Few distinct values so that ties are frequent; some NaN and infinities.
            let x: Vec<f64> = (0..n)
                .map(|_| {
                    let u = rng.uniform();
                    if u < 0.03 {
                        f64::NAN
                    } else if u < 0.04 {
                        f64::INFINITY
                    } else if u < 0.05 {
                        f64::NEG_INFINITY
                    } else {
                        (rng.uniform() * 8.0).floor()
                    }
                })
                .collect();
            for w in [1usize, 2, 3, 10, 50, 699, 701] {
                let mn = rolling_min(&x, w).unwrap();
                let mx = rolling_max(&x, w).unwrap();
                for i in 0..n {
                    assert!(same(mn[i], naive_window(&x, w, i, naive_min)), "min {i}");
                    assert!(same(mx[i], naive_window(&x, w, i, naive_max)), "max {i}");
                }
            }
        }
    }
}
