//! Python bindings of the bifrost-dsp kernels, built by maturin as `bifrost._core`.
//!
//! Every function takes a 1-D float64 NumPy array, runs its kernel with the Python
//! thread state detached (the GIL released) and returns a new float64 array of the same
//! length. Invalid parameters raise `ValueError`; nothing here panics on user input.

use std::borrow::Cow;

use bifrost_dsp::{BandType, Bands, DspError, Section};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Converts a kernel error to a Python `ValueError`.
fn value_error(err: DspError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// Checks a window given from Python (any int) and converts it to `usize`.
fn window_from(window: i64) -> PyResult<usize> {
    match usize::try_from(window) {
        Ok(w) if w > 0 => Ok(w),
        _ => Err(PyValueError::new_err(format!(
            "window must be a positive integer, got {window}"
        ))),
    }
}

/// Runs `kernel` on the samples of `x` without the GIL and wraps the result as an array.
fn run<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray1<'py, f64>,
    kernel: impl FnOnce(&[f64]) -> Result<Vec<f64>, DspError> + Send,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let result = match x.as_slice() {
        Ok(samples) => py.detach(|| kernel(samples)),
        Err(_) => {
            // Not contiguous (e.g. a strided view): copy it once.
            let samples: Vec<f64> = x.as_array().iter().copied().collect();
            py.detach(|| kernel(&samples))
        }
    };
    result.map(|out| out.into_pyarray(py)).map_err(value_error)
}

/// A new zeroed float64 array of `n` samples (NumPy's allocator: large arrays get
/// transparent huge pages, so first touching them costs far less than a fresh `Vec`).
fn zeros(py: Python<'_>, n: usize) -> Bound<'_, PyArray1<f64>> {
    PyArray1::<f64>::zeros(py, n, false)
}

/// Runs `kernel` writing into a new NumPy array, without the GIL.
fn run_into<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray1<'py, f64>,
    kernel: impl FnOnce(&[f64], &mut [f64]) -> Result<(), DspError> + Send,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let x = samples(x);
    let out = zeros(py, x.len());
    // SAFETY: `out` was just created here and is not shared with anything else yet.
    let slice = unsafe { out.as_slice_mut() }.map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.detach(|| kernel(&x, slice)).map_err(value_error)?;
    Ok(out)
}

/// Rolling mean over a trailing window (NaN until the window is full or if it holds NaN).
#[pyfunction]
fn rolling_mean<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run_into(py, &x, |s, out| {
        bifrost_dsp::rolling_mean_into(s, window, out)
    })
}

/// Rolling sample standard deviation (ddof=1) over a trailing window.
#[pyfunction]
fn rolling_std<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run_into(py, &x, |s, out| {
        bifrost_dsp::rolling_std_into(s, window, out)
    })
}

/// Rolling minimum over a trailing window.
#[pyfunction]
fn rolling_min<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run_into(py, &x, |s, out| {
        bifrost_dsp::rolling_min_into(s, window, out)
    })
}

/// Rolling maximum over a trailing window.
#[pyfunction]
fn rolling_max<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run_into(py, &x, |s, out| {
        bifrost_dsp::rolling_max_into(s, window, out)
    })
}

/// Exponentially weighted moving average (pandas `ewm(alpha=alpha, adjust=False)`).
#[pyfunction]
fn ewma<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    alpha: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    run_into(py, &x, |s, out| bifrost_dsp::ewma_into(s, alpha, out))
}

/// The samples of a 1-D array, borrowed when contiguous, else copied once.
fn samples<'a, T: numpy::Element + Copy>(x: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match x.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(x.as_array().iter().copied().collect()),
    }
}

/// The samples of a 2-D array in row-major order, borrowed when C-contiguous.
fn rows_of<'a>(x: &'a PyReadonlyArray2<'_, f64>) -> (Cow<'a, [f64]>, usize, usize) {
    let (rows, n) = x.as_array().dim();
    match x.as_slice() {
        Ok(s) => (Cow::Borrowed(s), rows, n),
        Err(_) => (Cow::Owned(x.as_array().iter().copied().collect()), rows, n),
    }
}

/// Wraps a row-major buffer as a 2-D array.
fn to_2d(
    py: Python<'_>,
    data: Vec<f64>,
    rows: usize,
    n: usize,
) -> PyResult<Bound<'_, PyArray2<f64>>> {
    Array2::from_shape_vec((rows, n), data)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Converts a non-negative integer argument from Python.
fn count_from(value: i64, what: &str) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a non-negative integer, got {value}"
        ))
    })
}

fn indices(py: Python<'_>, idx: Vec<usize>) -> Bound<'_, PyArray1<i64>> {
    idx.into_iter()
        .map(|i| i as i64)
        .collect::<Vec<i64>>()
        .into_pyarray(py)
}

type Binned<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// Bins (t, v) onto `start + k * step`: (count, sum, mean, min, max, first, last).
#[pyfunction]
fn bin_regular<'py>(
    py: Python<'py>,
    t: PyReadonlyArray1<'py, i64>,
    v: PyReadonlyArray1<'py, f64>,
    start: i64,
    step: i64,
    n_bins: i64,
) -> PyResult<Binned<'py>> {
    let n_bins = count_from(n_bins, "n_bins")?;
    let (t, v) = (samples(&t), samples(&v));
    let b = py
        .detach(|| bifrost_dsp::bin_regular(&t, &v, start, step, n_bins))
        .map_err(value_error)?;
    Ok((
        b.count.into_pyarray(py),
        b.sum.into_pyarray(py),
        b.mean.into_pyarray(py),
        b.min.into_pyarray(py),
        b.max.into_pyarray(py),
        b.first.into_pyarray(py),
        b.last.into_pyarray(py),
    ))
}

/// Indices chosen by a downsampler ("minmax", "m4", "lttb" or "minmaxlttb").
#[pyfunction]
#[pyo3(signature = (y, n_out, method, x=None, minmax_ratio=4))]
fn downsample<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f64>,
    n_out: i64,
    method: &str,
    x: Option<PyReadonlyArray1<'py, f64>>,
    minmax_ratio: i64,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let n_out = count_from(n_out, "n_out")?;
    let ratio = count_from(minmax_ratio, "minmax_ratio")?;
    let y = samples(&y);
    let x = x.as_ref().map(samples);
    let x = x.as_deref();
    let result = py.detach(|| match method {
        "minmax" => Ok(bifrost_dsp::minmax(x, &y, n_out)),
        "m4" => Ok(bifrost_dsp::m4(x, &y, n_out)),
        "lttb" => Ok(bifrost_dsp::lttb(x, &y, n_out)),
        "minmaxlttb" => Ok(bifrost_dsp::minmaxlttb(x, &y, n_out, ratio)),
        _ => Err(()),
    });
    match result {
        Ok(r) => r.map(|idx| indices(py, idx)).map_err(value_error),
        Err(()) => Err(PyValueError::new_err(format!(
            "method must be one of 'minmaxlttb', 'lttb', 'minmax', 'm4', got {method:?}"
        ))),
    }
}

/// Butterworth second-order sections, shape (n_sections, 6).
#[pyfunction]
fn butter<'py>(
    py: Python<'py>,
    order: i64,
    cutoff: Vec<f64>,
    fs: f64,
    btype: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let order = count_from(order, "order")?;
    let band = match btype {
        "lowpass" => BandType::Lowpass,
        "highpass" => BandType::Highpass,
        "bandpass" => BandType::Bandpass,
        "bandstop" => BandType::Bandstop,
        _ => {
            return Err(PyValueError::new_err(format!(
                "btype must be one of 'lowpass', 'highpass', 'bandpass', 'bandstop', got {btype:?}"
            )));
        }
    };
    let sos = bifrost_dsp::butter(order, &cutoff, fs, band).map_err(value_error)?;
    let rows = sos.len();
    to_2d(py, sos.into_iter().flatten().collect(), rows, 6)
}

fn sections_of(sos: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<Section>> {
    let array = sos.as_array();
    if array.ncols() != 6 {
        return Err(PyValueError::new_err(format!(
            "sos must have shape (n_sections, 6), got {:?}",
            array.shape()
        )));
    }
    Ok(array
        .rows()
        .into_iter()
        .map(|r| [r[0], r[1], r[2], r[3], r[4], r[5]])
        .collect())
}

/// Runs `kernel` from the rows of `x` (`n` samples each) into a new NumPy array (NumPy's
/// allocator, see [`zeros`]), without the GIL.
fn filter_rows<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray2<'py, f64>,
    kernel: impl FnOnce(&[f64], &mut [f64], usize) -> Result<(), DspError> + Send,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (data, rows, n) = rows_of(x);
    let out = PyArray2::<f64>::zeros(py, (rows, n), false);
    // SAFETY: `out` was just created here and is not shared with anything else yet.
    let slice = unsafe { out.as_slice_mut() }.map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.detach(|| kernel(&data, slice, n)).map_err(value_error)?;
    Ok(out)
}

/// Forward SOS filtering from rest of each row of `x` (rows in parallel).
#[pyfunction]
fn sosfilt<'py>(
    py: Python<'py>,
    sos: PyReadonlyArray2<'py, f64>,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let sections = sections_of(&sos)?;
    filter_rows(py, &x, |src, out, n| {
        bifrost_dsp::sosfilt_rows_from(&sections, src, out, n)
    })
}

/// Zero-phase SOS filtering of each row of `x` (scipy's odd padding; rows in parallel).
#[pyfunction]
#[pyo3(signature = (sos, x, padlen=None))]
fn sosfiltfilt<'py>(
    py: Python<'py>,
    sos: PyReadonlyArray2<'py, f64>,
    x: PyReadonlyArray2<'py, f64>,
    padlen: Option<i64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let sections = sections_of(&sos)?;
    let padlen = padlen.map(|p| count_from(p, "padlen")).transpose()?;
    filter_rows(py, &x, |src, out, n| {
        bifrost_dsp::sosfiltfilt_rows_from(&sections, src, out, n, padlen)
    })
}

/// Welch PSD (periodic Hann, constant detrend, one-sided density).
#[pyfunction]
fn welch<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    fs: f64,
    nperseg: i64,
    noverlap: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let nperseg = count_from(nperseg, "nperseg")?;
    let noverlap = count_from(noverlap, "noverlap")?;
    run(py, &x, |s| bifrost_dsp::welch(s, fs, nperseg, noverlap))
}

type Features<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// RMS, peak, crest factor and kurtosis of whole non-overlapping windows.
#[pyfunction]
fn window_features<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Features<'py>> {
    let window = window_from(window)?;
    let x = samples(&x);
    let f = py
        .detach(|| bifrost_dsp::window_features(&x, window))
        .map_err(value_error)?;
    Ok((
        f.rms.into_pyarray(py),
        f.peak.into_pyarray(py),
        f.crest.into_pyarray(py),
        f.kurtosis.into_pyarray(py),
    ))
}

/// Moment features and band energies of the segments `x[offsets[j]:offsets[j + 1]]`,
/// one row each; `block = 0` computes no spectrum (then `bands` must have no rows).
#[pyfunction]
fn segment_features<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    t: PyReadonlyArray1<'py, f64>,
    offsets: PyReadonlyArray1<'py, i64>,
    fs: f64,
    block: i64,
    bands: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let offsets: Vec<usize> = samples(&offsets)
        .iter()
        .map(|&o| count_from(o, "segment offset"))
        .collect::<PyResult<_>>()?;
    let block = count_from(block, "block")?;
    let edges = bands.as_array();
    if edges.ncols() != 2 {
        return Err(PyValueError::new_err(format!(
            "bands must have shape (n_bands, 2), got {:?}",
            edges.shape()
        )));
    }
    let edges: Vec<(f64, f64)> = edges.rows().into_iter().map(|r| (r[0], r[1])).collect();
    let spectrum = match (block, edges.is_empty()) {
        (0, true) => None,
        (0, false) => {
            return Err(PyValueError::new_err(
                "band energies need a spectrum block of at least 2 samples, got block=0",
            ));
        }
        _ => Some(Bands { fs, block, edges }),
    };
    let (x, t) = (samples(&x), samples(&t));
    let rows = offsets.len().saturating_sub(1);
    let width = bifrost_dsp::MOMENT_FEATURES.len() + spectrum.as_ref().map_or(0, |b| b.edges.len());
    let out = py
        .detach(|| bifrost_dsp::segment_features(&x, &t, &offsets, spectrum.as_ref()))
        .map_err(value_error)?;
    to_2d(py, out, rows, width)
}

/// Centre line and sigma (mean moving range / d2) of an individuals chart.
#[pyfunction]
fn individuals_limits(py: Python<'_>, x: PyReadonlyArray1<'_, f64>) -> (f64, f64) {
    let x = samples(&x);
    py.detach(|| bifrost_dsp::individuals_limits(&x))
}

/// Per-sample bit masks of the Nelson rules (bit 8: Western Electric rule 4).
#[pyfunction]
fn nelson_rules<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    center: f64,
    sigma: f64,
) -> PyResult<Bound<'py, PyArray1<u16>>> {
    let x = samples(&x);
    py.detach(|| bifrost_dsp::nelson_rules(&x, center, sigma))
        .map(|flags| flags.into_pyarray(py))
        .map_err(value_error)
}

/// (mean, sigma_within, sigma_overall, cp, cpk, pp, ppk); NaN for a missing limit.
#[pyfunction]
fn capability(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    lsl: f64,
    usl: f64,
) -> PyResult<(f64, f64, f64, f64, f64, f64, f64)> {
    let x = samples(&x);
    let c = py
        .detach(|| bifrost_dsp::capability(&x, lsl, usl))
        .map_err(value_error)?;
    Ok((
        c.mean,
        c.sigma_within,
        c.sigma_overall,
        c.cp,
        c.cpk,
        c.pp,
        c.ppk,
    ))
}

/// Two float arrays.
type Pair<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// Tabular CUSUM sums (upper, lower).
#[pyfunction]
fn cusum<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    target: f64,
    k: f64,
) -> PyResult<Pair<'py>> {
    let x = samples(&x);
    let (upper, lower) = py
        .detach(|| bifrost_dsp::cusum(&x, target, k))
        .map_err(value_error)?;
    Ok((upper.into_pyarray(py), lower.into_pyarray(py)))
}

/// Indices where the trigger rises above the threshold.
#[pyfunction]
fn rising_edges<'py>(
    py: Python<'py>,
    trigger: PyReadonlyArray1<'py, f64>,
    threshold: f64,
) -> Bound<'py, PyArray1<i64>> {
    let trigger = samples(&trigger);
    let edges = py.detach(|| bifrost_dsp::rising_edges(&trigger, threshold));
    indices(py, edges)
}

/// Cycles `x[starts[j]:starts[j+1]]` (the last ends at `end`) as rows of `length`.
#[pyfunction]
fn stack_cycles<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    starts: PyReadonlyArray1<'py, i64>,
    end: i64,
    length: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let starts: Vec<usize> = samples(&starts)
        .iter()
        .map(|&s| count_from(s, "cycle start"))
        .collect::<PyResult<_>>()?;
    let end = count_from(end, "end")?;
    let length = count_from(length, "length")?;
    let x = samples(&x);
    let out = py
        .detach(|| bifrost_dsp::stack_cycles(&x, &starts, end, length))
        .map_err(value_error)?;
    to_2d(py, out, starts.len(), length)
}

/// Version of the compiled kernels.
#[pyfunction]
fn kernel_version() -> &'static str {
    bifrost_dsp::VERSION
}

/// Compiled signal-processing kernels of bifrost.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rolling_mean, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_std, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_min, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_max, m)?)?;
    m.add_function(wrap_pyfunction!(ewma, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_version, m)?)?;
    m.add_function(wrap_pyfunction!(bin_regular, m)?)?;
    m.add_function(wrap_pyfunction!(downsample, m)?)?;
    m.add_function(wrap_pyfunction!(butter, m)?)?;
    m.add_function(wrap_pyfunction!(sosfilt, m)?)?;
    m.add_function(wrap_pyfunction!(sosfiltfilt, m)?)?;
    m.add_function(wrap_pyfunction!(welch, m)?)?;
    m.add_function(wrap_pyfunction!(window_features, m)?)?;
    m.add_function(wrap_pyfunction!(segment_features, m)?)?;
    m.add_function(wrap_pyfunction!(individuals_limits, m)?)?;
    m.add_function(wrap_pyfunction!(nelson_rules, m)?)?;
    m.add_function(wrap_pyfunction!(capability, m)?)?;
    m.add_function(wrap_pyfunction!(cusum, m)?)?;
    m.add_function(wrap_pyfunction!(rising_edges, m)?)?;
    m.add_function(wrap_pyfunction!(stack_cycles, m)?)?;
    Ok(())
}
