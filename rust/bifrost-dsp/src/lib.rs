//! Signal-processing kernels of bifrost, in pure Rust (no Python).
//!
//! Every kernel takes a slice of `f64` samples and returns (or writes) an output of the
//! same length. Kernels never panic on user input: invalid parameters come back as a
//! [`DspError`].
//!
//! # Semantics of the rolling kernels
//!
//! The rolling kernels ([`rolling_mean`], [`rolling_std`], [`rolling_min`],
//! [`rolling_max`]) match pandas' `Series.rolling(window, min_periods=window)`:
//!
//! * the output has the length of the input, and output `i` describes the trailing
//!   window `x[i + 1 - window ..= i]`;
//! * the first `window - 1` outputs are NaN (the window is not full yet), so a window
//!   longer than the input gives an all-NaN output;
//! * a window that contains a missing sample gives NaN (pandas with
//!   `min_periods=window` needs `window` valid values). Like pandas, the kernels treat
//!   `+inf` and `-inf` as missing, exactly like NaN;
//! * a window whose samples are all equal has exactly that value as mean and exactly
//!   `0.0` as standard deviation.
//!
//! The mean and the standard deviation use a "two stacks" scheme over blocks of
//! `window` samples: each window is the merge of a suffix of one block and a prefix of
//! the next, so no value is ever subtracted from a running sum. This keeps them
//! `O(n)` whatever the window while avoiding the drift and cancellation of add/remove
//! running sums (large offsets such as `1e9 + noise`, or a spike leaving the window).
//!
//! # Exponentially weighted mean
//!
//! [`ewma`] matches pandas' `Series.ewm(alpha=alpha, adjust=False).mean()` (with the
//! defaults `ignore_na=False`, `min_periods=0`): missing samples (NaN, +/-inf) repeat
//! the previous average.

mod error;
mod ewma;
mod extrema;
mod rolling;

pub use error::DspError;
pub use ewma::{ewma, ewma_into};
pub use extrema::{rolling_max, rolling_max_into, rolling_min, rolling_min_into};
pub use rolling::{rolling_mean, rolling_mean_into, rolling_std, rolling_std_into};

/// Version of the kernel crate (the Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Checks a window length and an output buffer against the input length.
fn check_window(input: usize, window: usize, output: usize) -> Result<(), DspError> {
    if window == 0 {
        return Err(DspError::ZeroWindow);
    }
    check_len(input, output)
}

/// Checks that an output buffer has the input's length.
fn check_len(input: usize, output: usize) -> Result<(), DspError> {
    if input == output {
        Ok(())
    } else {
        Err(DspError::LengthMismatch { input, output })
    }
}

#[cfg(test)]
mod testutil;
