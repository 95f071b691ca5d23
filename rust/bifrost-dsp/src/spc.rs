//! Statistical process control: Shewhart individuals limits, Nelson / Western Electric
//! rules per sample, process capability, CUSUM, and cycle segmentation on a trigger.

use crate::DspError;

/// `d2` for moving ranges of two samples (sigma = mean moving range / d2).
pub const D2: f64 = 1.128;

/// Bit of each rule in the masks of [`nelson_rules`]: bit `k - 1` is Nelson rule `k`;
/// bit 8 is Western Electric rule 4 (8 in a row on one side of the centre line).
pub const WE4_BIT: u16 = 1 << 8;

/// Centre line and sigma of an individuals chart: the mean of the non-NaN samples and
/// the mean moving range (of adjacent non-NaN samples) divided by [`D2`].
///
/// Returns NaN sigma with fewer than two adjacent non-NaN samples.
pub fn individuals_limits(x: &[f64]) -> (f64, f64) {
    let (mut sum, mut count) = (0.0, 0usize);
    for &v in x.iter().filter(|v| !v.is_nan()) {
        sum += v;
        count += 1;
    }
    let (mut ranges, mut pairs) = (0.0, 0usize);
    for w in x.windows(2) {
        let d = (w[1] - w[0]).abs();
        if !d.is_nan() {
            ranges += d;
            pairs += 1;
        }
    }
    (sum / count as f64, ranges / pairs as f64 / D2)
}

/// Flags each sample with the rules it completes, as a bit mask (see [`WE4_BIT`]).
///
/// The rules, with `c` the centre and `s` sigma, on runs of consecutive samples:
///
/// 1. one sample beyond `c +/- 3s`;
/// 2. nine in a row on one side of `c`;
/// 3. six in a row steadily increasing or decreasing;
/// 4. fourteen in a row alternating up and down;
/// 5. two of three beyond `2s` on the same side;
/// 6. four of five beyond `1s` on the same side;
/// 7. fifteen in a row within `1s`;
/// 8. eight in a row beyond `1s`, either side;
///
/// and WE4: eight in a row on one side. A sample is flagged when it is the last of such
/// a run. NaN samples are never flagged and break every run.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] unless `center` is finite and `sigma` positive and
/// finite.
pub fn nelson_rules(x: &[f64], center: f64, sigma: f64) -> Result<Vec<u16>, DspError> {
    if !(center.is_finite() && sigma.is_finite() && sigma > 0.0) {
        return Err(DspError::InvalidArgument(
            "center must be finite and sigma positive and finite",
        ));
    }
    let z: Vec<f64> = x.iter().map(|&v| (v - center) / sigma).collect();
    let mut flags = vec![0u16; x.len()];
    // Length of the run of valid samples ending here, and of each pattern's run.
    let mut valid = 0usize;
    let (mut side_run, mut side) = (0usize, 0i8);
    let (mut trend_run, mut trend) = (0usize, 0i8);
    let (mut alt_run, mut last_step) = (0usize, 0i8);
    let (mut inner_run, mut outer_run) = (0usize, 0usize);
    let sign = |v: f64| -> i8 {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    for i in 0..x.len() {
        let zi = z[i];
        if zi.is_nan() {
            valid = 0;
            (side_run, trend_run, alt_run, inner_run, outer_run) = (0, 0, 0, 0, 0);
            continue;
        }
        valid += 1;
        let mut f = 0u16;
        if zi.abs() > 3.0 {
            f |= 1;
        }
        let s = sign(zi);
        side_run = if s != 0 && s == side && valid > 1 {
            side_run + 1
        } else {
            usize::from(s != 0)
        };
        side = s;
        if side_run >= 9 {
            f |= 1 << 1;
        }
        if side_run >= 8 {
            f |= WE4_BIT;
        }
        // Runs of steps between consecutive samples (`trend_run` counts samples).
        let step = if valid > 1 { sign(zi - z[i - 1]) } else { 0 };
        trend_run = if step != 0 && step == trend {
            trend_run + 1
        } else if step != 0 {
            2
        } else {
            1
        };
        trend = step;
        if trend_run >= 6 {
            f |= 1 << 2;
        }
        alt_run = if step != 0 && step == -last_step {
            alt_run + 1
        } else if step != 0 {
            2
        } else {
            1
        };
        last_step = step;
        if alt_run >= 14 {
            f |= 1 << 3;
        }
        let beyond = |k: usize, limit: f64, need: usize| -> bool {
            if valid < k {
                return false;
            }
            let window = &z[i + 1 - k..=i];
            window.iter().filter(|&&v| v > limit).count() >= need
                || window.iter().filter(|&&v| v < -limit).count() >= need
        };
        if beyond(3, 2.0, 2) {
            f |= 1 << 4;
        }
        if beyond(5, 1.0, 4) {
            f |= 1 << 5;
        }
        inner_run = if zi.abs() < 1.0 { inner_run + 1 } else { 0 };
        if inner_run >= 15 {
            f |= 1 << 6;
        }
        outer_run = if zi.abs() > 1.0 { outer_run + 1 } else { 0 };
        if outer_run >= 8 {
            f |= 1 << 7;
        }
        flags[i] = f;
    }
    Ok(flags)
}

/// Process capability of the non-NaN samples against specification limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capability {
    /// Mean of the samples.
    pub mean: f64,
    /// Short-term sigma: mean moving range / [`D2`].
    pub sigma_within: f64,
    /// Overall sample standard deviation (`ddof = 1`).
    pub sigma_overall: f64,
    /// `(usl - lsl) / 6 sigma_within`; NaN unless both limits are given.
    pub cp: f64,
    /// `min(usl - mean, mean - lsl) / 3 sigma_within` over the given limits.
    pub cpk: f64,
    /// As `cp` with the overall sigma.
    pub pp: f64,
    /// As `cpk` with the overall sigma.
    pub ppk: f64,
}

/// Cp, Cpk, Pp and Ppk; a missing limit is NaN (one-sided Cpk uses the other).
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if both limits are NaN, or `lsl >= usl`.
pub fn capability(x: &[f64], lsl: f64, usl: f64) -> Result<Capability, DspError> {
    if lsl.is_nan() && usl.is_nan() {
        return Err(DspError::InvalidArgument(
            "give at least one specification limit",
        ));
    }
    if lsl >= usl {
        return Err(DspError::InvalidArgument("lsl must be below usl"));
    }
    let (mean, sigma_within) = individuals_limits(x);
    let valid: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let m2: f64 = valid.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sigma_overall = (m2 / (valid.len() as f64 - 1.0)).sqrt();
    let indices = |sigma: f64| -> (f64, f64) {
        let cp = (usl - lsl) / (6.0 * sigma);
        let upper = (usl - mean) / (3.0 * sigma);
        let lower = (mean - lsl) / (3.0 * sigma);
        let cpk = match (upper.is_nan(), lower.is_nan()) {
            (true, _) => lower,
            (_, true) => upper,
            _ => upper.min(lower),
        };
        (cp, cpk)
    };
    let (cp, cpk) = indices(sigma_within);
    let (pp, ppk) = indices(sigma_overall);
    Ok(Capability {
        mean,
        sigma_within,
        sigma_overall,
        cp,
        cpk,
        pp,
        ppk,
    })
}

/// Tabular CUSUM (Page): `upper[i] = max(0, upper[i-1] + x[i] - target - k)` and
/// `lower[i] = max(0, lower[i-1] + target - k - x[i])`, from 0. A NaN sample carries
/// both sums over unchanged. Sums above `h` signal a shift (the caller compares).
///
/// # Errors
///
/// [`DspError::InvalidArgument`] unless `target` is finite and `k >= 0` finite.
pub fn cusum(x: &[f64], target: f64, k: f64) -> Result<(Vec<f64>, Vec<f64>), DspError> {
    if !(target.is_finite() && k.is_finite() && k >= 0.0) {
        return Err(DspError::InvalidArgument(
            "target must be finite and k finite and non-negative",
        ));
    }
    let mut upper = Vec::with_capacity(x.len());
    let mut lower = Vec::with_capacity(x.len());
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for &v in x {
        if !v.is_nan() {
            hi = (hi + (v - target - k)).max(0.0);
            lo = (lo + (target - k - v)).max(0.0);
        }
        upper.push(hi);
        lower.push(lo);
    }
    Ok((upper, lower))
}

/// Indices where `trigger` rises above `threshold`: `trigger[i] > threshold` and
/// `trigger[i - 1] <= threshold`. NaN counts as not above; sample 0 is never an edge.
pub fn rising_edges(trigger: &[f64], threshold: f64) -> Vec<usize> {
    let above = |v: f64| v > threshold;
    trigger
        .windows(2)
        .enumerate()
        .filter(|(_, w)| above(w[1]) && !above(w[0]))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Stacks the cycles `x[starts[j] .. starts[j + 1]]` (the last cycle ends at `end`)
/// into rows of `length` samples, row-major, NaN-padded or truncated.
///
/// # Errors
///
/// [`DspError::InvalidArgument`] if `starts` is not increasing or exceeds `end`, or
/// `end > x.len()`.
pub fn stack_cycles(
    x: &[f64],
    starts: &[usize],
    end: usize,
    length: usize,
) -> Result<Vec<f64>, DspError> {
    if end > x.len() {
        return Err(DspError::InvalidArgument(
            "the end of the last cycle is past the data",
        ));
    }
    let bounds: Vec<usize> = starts.iter().copied().chain(std::iter::once(end)).collect();
    if bounds.windows(2).any(|w| w[1] <= w[0]) {
        return Err(DspError::InvalidArgument(
            "cycle starts must be increasing and before the end",
        ));
    }
    let mut out = vec![f64::NAN; starts.len() * length];
    for (row, w) in out.chunks_mut(length.max(1)).zip(bounds.windows(2)) {
        let cycle = &x[w[0]..w[1]];
        let take = cycle.len().min(length);
        row[..take].copy_from_slice(&cycle[..take]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(flags: &[u16], bit: u16) -> Vec<usize> {
        flags
            .iter()
            .enumerate()
            .filter(|&(_, f)| f & bit != 0)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn limits_and_rule_one() {
        let x = [0.0, 1.0, 0.0, 1.0, 0.0];
        let (c, s) = individuals_limits(&x);
        assert_eq!(c, 0.4);
        assert_eq!(s, 1.0 / D2);
        let x = [0.0, 0.5, 3.5, -3.5, f64::NAN, 2.9];
        let f = nelson_rules(&x, 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1), vec![2, 3]);
        assert_eq!(f[4], 0);
        assert!(nelson_rules(&x, 0.0, 0.0).is_err());
        assert!(nelson_rules(&x, f64::NAN, 1.0).is_err());
    }

    #[test]
    fn run_rules() {
        let mut x = vec![0.5; 10];
        x[0] = -0.5;
        let f = nelson_rules(&x, 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 1), vec![9]); // 9 above from index 1
        assert_eq!(rule(&f, WE4_BIT), vec![8, 9]);
        let up: Vec<f64> = (0..7).map(|i| f64::from(i) * 0.1).collect();
        let f = nelson_rules(&up, 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 2), vec![5, 6]);
        let alt: Vec<f64> = (0..15)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let f = nelson_rules(&alt, 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 3), vec![13, 14]);
        assert_eq!(rule(&f, 1 << 6), vec![14]);
        let f = nelson_rules(&[2.5, 0.0, 2.1, 0.0], 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 4), vec![2]);
        let f = nelson_rules(&[1.5, 1.5, 0.0, 1.5, 1.5], 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 5), vec![4]);
        let f = nelson_rules(&[1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.5], 0.0, 1.0).unwrap();
        assert_eq!(rule(&f, 1 << 7), vec![7]);
        let mut broken = vec![0.5; 10];
        broken[5] = f64::NAN;
        assert!(
            nelson_rules(&broken, 0.0, 1.0)
                .unwrap()
                .iter()
                .all(|&f| f & 0b10 == 0)
        );
    }

    #[test]
    fn capability_indices() {
        let x = [9.0, 11.0, 9.0, 11.0, f64::NAN];
        let c = capability(&x, 4.0, 16.0).unwrap();
        assert_eq!(c.mean, 10.0);
        assert!((c.sigma_within - 2.0 / D2).abs() < 1e-15);
        assert!((c.cp - 12.0 / (6.0 * 2.0 / D2)).abs() < 1e-12);
        assert!((c.cpk - c.cp).abs() < 1e-12);
        let one_sided = capability(&x, f64::NAN, 16.0).unwrap();
        assert!(one_sided.cp.is_nan());
        assert!((one_sided.cpk - 6.0 / (3.0 * 2.0 / D2)).abs() < 1e-12);
        assert!(capability(&x, f64::NAN, f64::NAN).is_err());
        assert!(capability(&x, 5.0, 5.0).is_err());
    }

    #[test]
    fn cusum_recursion() {
        let x = [0.0, 2.0, 2.0, f64::NAN, -3.0];
        let (u, l) = cusum(&x, 0.0, 0.5).unwrap();
        assert_eq!(u, vec![0.0, 1.5, 3.0, 3.0, 0.0]);
        assert_eq!(l, vec![0.0, 0.0, 0.0, 0.0, 2.5]);
        assert!(cusum(&x, 0.0, -1.0).is_err());
    }

    #[test]
    fn cycles() {
        let trigger = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, f64::NAN, 1.0, 0.0];
        assert_eq!(rising_edges(&trigger, 0.5), vec![1, 5, 7]);
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let s = stack_cycles(&x, &[1, 5], 7, 3).unwrap();
        assert_eq!(&s[..3], &[1.0, 2.0, 3.0]);
        assert_eq!(s[3..5], [5.0, 6.0]);
        assert!(s[5].is_nan());
        assert!(stack_cycles(&x, &[5, 1], 7, 3).is_err());
        assert!(stack_cycles(&x, &[1], 10, 3).is_err());
        assert!(stack_cycles(&x, &[], 9, 3).unwrap().is_empty());
    }
}
