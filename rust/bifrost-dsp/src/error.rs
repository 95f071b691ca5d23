//! The error type of the kernels.

use std::fmt;

/// Why a kernel refused its input.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum DspError {
    /// The window length was zero; it must be at least 1.
    ZeroWindow,
    /// The smoothing factor was not in `(0, 1]` (or was NaN).
    InvalidAlpha(f64),
    /// An output buffer does not have the length of the input.
    LengthMismatch {
        /// Length of the input.
        input: usize,
        /// Length of the output buffer.
        output: usize,
    },
    /// A parameter is out of its range; the message says which and why.
    InvalidArgument(&'static str),
    /// The input is shorter than the operation needs.
    TooShort {
        /// What needs the samples.
        what: &'static str,
        /// Samples needed (more than this many).
        needed: usize,
        /// Samples given.
        got: usize,
    },
    /// The input holds NaN or an infinity where only finite samples make sense.
    NotFinite(&'static str),
}

impl fmt::Display for DspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroWindow => write!(f, "window must be a positive integer, got 0"),
            Self::InvalidAlpha(alpha) => {
                write!(f, "alpha must be in the interval (0, 1], got {alpha}")
            }
            Self::LengthMismatch { input, output } => write!(
                f,
                "output length {output} does not match input length {input}"
            ),
            Self::InvalidArgument(message) => f.write_str(message),
            Self::TooShort { what, needed, got } => {
                write!(f, "{what} needs more than {needed} samples, got {got}")
            }
            Self::NotFinite(what) => write!(
                f,
                "{what}: the input holds NaN or infinite samples; fill or drop the gaps first"
            ),
        }
    }
}

impl std::error::Error for DspError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value() {
        assert_eq!(
            DspError::ZeroWindow.to_string(),
            "window must be a positive integer, got 0"
        );
        assert!(DspError::InvalidAlpha(1.5).to_string().contains("1.5"));
        let msg = DspError::LengthMismatch {
            input: 3,
            output: 2,
        }
        .to_string();
        assert!(msg.contains('3') && msg.contains('2'));
    }
}
