//! Python bindings of the bifrost-dsp kernels, built by maturin as `bifrost._core`.
//!
//! Every function takes a 1-D float64 NumPy array, runs its kernel with the Python
//! thread state detached (the GIL released) and returns a new float64 array of the same
//! length. Invalid parameters raise `ValueError`; nothing here panics on user input.

use bifrost_dsp::DspError;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
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

/// Rolling mean over a trailing window (NaN until the window is full or if it holds NaN).
#[pyfunction]
fn rolling_mean<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run(py, &x, |s| bifrost_dsp::rolling_mean(s, window))
}

/// Rolling sample standard deviation (ddof=1) over a trailing window.
#[pyfunction]
fn rolling_std<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run(py, &x, |s| bifrost_dsp::rolling_std(s, window))
}

/// Rolling minimum over a trailing window.
#[pyfunction]
fn rolling_min<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run(py, &x, |s| bifrost_dsp::rolling_min(s, window))
}

/// Rolling maximum over a trailing window.
#[pyfunction]
fn rolling_max<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    window: i64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let window = window_from(window)?;
    run(py, &x, |s| bifrost_dsp::rolling_max(s, window))
}

/// Exponentially weighted moving average (pandas `ewm(alpha=alpha, adjust=False)`).
#[pyfunction]
fn ewma<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    alpha: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    run(py, &x, |s| bifrost_dsp::ewma(s, alpha))
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
    Ok(())
}
