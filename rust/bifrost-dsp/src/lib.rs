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
//! the next, so no value is ever subtracted from a running sum. Samples are shifted by
//! a sample of the window (the first of its second block). This keeps them `O(n)`
//! whatever the window while avoiding the drift and cancellation of add/remove running
//! sums (large offsets such as `1e9 + noise`, or a spike leaving the window). Sums of
//! finite samples that overflow give an infinite or NaN result.
//!
//! # Beyond rolling windows
//!
//! [`bin_regular`] resamples timestamped samples onto a regular grid (all statistics in
//! one pass); [`minmax`], [`m4`], [`lttb`] and [`minmaxlttb`] pick samples for plots;
//! [`butter`] designs Butterworth filters as second-order sections that
//! [`sosfilt_rows`] and [`sosfiltfilt_rows`] apply to many channels in parallel;
//! [`welch`] estimates power spectral densities and [`window_features`] computes
//! vibration features of whole windows, [`segment_features`] moments and band energies
//! of arbitrary segments (time windows, machine cycles); [`nelson_rules`], [`capability`], [`cusum`], [`rising_edges`]
//! and [`stack_cycles`] serve process analysis.
//!
//! # Exponentially weighted mean
//!
//! [`ewma`] matches pandas' `Series.ewm(alpha=alpha, adjust=False).mean()` (with the
//! defaults `ignore_na=False`, `min_periods=0`): missing samples (NaN, +/-inf) repeat
//! the previous average.

mod downsample;
mod error;
mod ewma;
mod extrema;
mod features;
mod filter;
mod resample;
mod rolling;
mod share;
mod spc;
mod spectral;

pub use error::DspError;
pub use ewma::{ewma, ewma_into};
pub use extrema::{rolling_max, rolling_max_into, rolling_min, rolling_min_into};
pub use features::{Bands, MOMENT_FEATURES, segment_features};
pub use rolling::{rolling_mean, rolling_mean_into, rolling_std, rolling_std_into};

pub use downsample::{lttb, m4, minmax, minmaxlttb};
pub use filter::{
    BandType, MAX_ORDER, Section, butter, default_padlen, sosfilt, sosfilt_rows, sosfilt_rows_from,
    sosfiltfilt, sosfiltfilt_rows, sosfiltfilt_rows_from,
};
pub use resample::{Binned, bin_regular};
pub use spc::{
    Capability, D2, WE4_BIT, capability, cusum, individuals_limits, nelson_rules, rising_edges,
    stack_cycles,
};
pub use spectral::{WindowFeatures, welch, window_features};

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
