//! Work shared between the calling thread and whichever pool threads are free.
//!
//! A rayon `par_iter` called from outside the pool hands all of the work to the pool and
//! puts the caller to sleep: on a busy machine the call then waits for the pool threads
//! to be scheduled and for the caller to be woken again, and may end up slower than one
//! thread. Here the caller starts on the first chunk at once and pool threads join in
//! when they get a core; the caller only ever waits for chunks a helper has already
//! started, never for a helper that has not run yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Claims of chunks, shared with helpers that may outlive the call (they then find
/// nothing left to claim and never touch the call's data).
struct Claims {
    next: AtomicUsize,
    done: AtomicUsize,
}

/// The call's work and output, lifetime erased: only dereferenced by a thread holding
/// a claimed chunk, and the call does not return before every claimed chunk is done.
struct Job<T> {
    task: *const (dyn Fn(usize) -> T + Sync),
    out: *mut T,
    items: usize,
    chunk: usize,
    chunks: usize,
}

impl<T> Clone for Job<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Job<T> {}

// SAFETY: the pointers are only dereferenced while the call that owns their targets is
// waiting for the chunk (see `Job`); `task` is `Sync` and each `out[i]` has exactly one
// writer, so sharing them between threads is what the owner would do itself.
unsafe impl<T: Send> Send for Job<T> {}

/// Aborts if the caller's part of the work panics: helpers may still be using the
/// call's data, so unwinding out of the call would free it under them.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::process::abort();
        }
    }
}

impl<T> Job<T> {
    /// Claims and runs chunks until none is left.
    ///
    /// # Safety
    ///
    /// `task` and `out` must be alive until `claims.done` counts every chunk.
    unsafe fn work(&self, claims: &Claims) {
        loop {
            let c = claims.next.fetch_add(1, Ordering::Relaxed);
            if c >= self.chunks {
                return;
            }
            let end = ((c + 1) * self.chunk).min(self.items);
            for i in c * self.chunk..end {
                // SAFETY: the chunk is claimed, so its owner is waiting (contract above);
                // `i < items`, the length of `out`, and no other thread touches `out[i]`
                // (the default it replaces is dropped).
                unsafe { *self.out.add(i) = (*self.task)(i) };
            }
            claims.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// `(0..items).map(task)` in chunks of `chunk` items, run by the caller and by up to
/// `rayon::current_num_threads() - 1` pool threads that are free (none with one thread,
/// or for a single chunk). `task` must not panic (that aborts the process).
pub(crate) fn map_shared<T: Default + Send + 'static>(
    items: usize,
    chunk: usize,
    task: &(dyn Fn(usize) -> T + Sync),
) -> Vec<T> {
    let chunk = chunk.max(1);
    let chunks = items.div_ceil(chunk);
    let mut out: Vec<T> = (0..items).map(|_| T::default()).collect();
    let helpers = rayon::current_num_threads()
        .saturating_sub(1)
        .min(chunks.saturating_sub(1));
    if helpers == 0 {
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = task(i);
        }
        return out;
    }
    let claims = Arc::new(Claims {
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let task: *const (dyn Fn(usize) -> T + Sync + '_) = task;
    // SAFETY: only the lifetime is erased; see `Job` for why no use outlives `task`.
    let task: *const (dyn Fn(usize) -> T + Sync + 'static) = unsafe { std::mem::transmute(task) };
    let job = Job {
        task,
        out: out.as_mut_ptr(),
        items,
        chunk,
        chunks,
    };
    for _ in 0..helpers {
        let claims = Arc::clone(&claims);
        rayon::spawn(move || {
            let job = job;
            // SAFETY: the caller below waits for every claimed chunk.
            unsafe { job.work(&claims) }
        });
    }
    let guard = AbortOnUnwind;
    // SAFETY: `task` and `out` live until this function returns, after the wait below.
    unsafe { job.work(&claims) };
    // Every chunk is claimed now; wait for those still running on a helper.
    while claims.done.load(Ordering::Acquire) < chunks {
        std::thread::yield_now();
    }
    drop(guard);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_item_once_in_order() {
        for (items, chunk) in [
            (0usize, 4usize),
            (1, 4),
            (7, 1),
            (1000, 64),
            (1001, 64),
            (5, 0),
        ] {
            let calls = AtomicUsize::new(0);
            let square = |i: usize| {
                calls.fetch_add(1, Ordering::Relaxed);
                i * i
            };
            let got = map_shared(items, chunk, &square);
            assert_eq!(got, (0..items).map(|i| i * i).collect::<Vec<_>>());
            assert_eq!(calls.load(Ordering::Relaxed), items);
        }
    }

    #[test]
    fn owned_results_are_kept_whole() {
        let got = map_shared(500, 3, &|i| vec![i; i % 4]);
        assert_eq!(got, (0..500).map(|i| vec![i; i % 4]).collect::<Vec<_>>());
    }

    #[test]
    fn helpers_outliving_the_call_touch_nothing() {
        // Many short calls in a row: helpers spawned by one call often run after it has
        // returned (and its data is gone); they must find no chunk left.
        for round in 0..200usize {
            let data: Vec<usize> = (0..300).map(|i| i + round).collect();
            let got = map_shared(data.len(), 8, &|i| data[i] * 2);
            assert_eq!(got, data.iter().map(|v| v * 2).collect::<Vec<_>>());
        }
    }
}
