//! Helpers shared by the unit tests.

/// A small deterministic generator (64-bit LCG), enough for test data.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly standard normal (sum of 12 uniforms minus 6).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// Applies `f` to the trailing window ending at `i`, or NaN if it is not full.
pub fn naive_window(x: &[f64], w: usize, i: usize, f: impl Fn(&[f64]) -> f64) -> f64 {
    if i + 1 < w {
        f64::NAN
    } else {
        f(&x[i + 1 - w..=i])
    }
}

/// Asserts `actual` equals `expected` to a relative tolerance (NaN equals NaN).
#[track_caller]
pub fn assert_close(actual: f64, expected: f64, rtol: f64, what: &str) {
    if expected.is_nan() {
        assert!(actual.is_nan(), "{what}: expected NaN, got {actual}");
        return;
    }
    let tol = rtol * expected.abs().max(1e-300);
    assert!(
        (actual - expected).abs() <= tol || actual == expected,
        "{what}: expected {expected}, got {actual}"
    );
}
