//! What the engine needs from its host: a way to run independent chunks of work in parallel.

/// Runs the chunks of a computation, possibly on several threads.
///
/// `run(out, chunk, f)` splits `out` into pieces of `chunk` elements (the last may be shorter) and
/// calls `f(first_index, piece)` once for each; calls may run concurrently. The std host uses
/// threads, the kernel host kthreads; [`Serial`] runs them in order.
pub trait Parallel: Sync {
    /// Number of workers (used to size chunks).
    fn n_threads(&self) -> usize;
    /// Calls `f` on every `chunk`-sized piece of `out`.
    fn run(&self, out: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync));
}

/// Runs everything on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl Parallel for Serial {
    fn n_threads(&self) -> usize {
        1
    }

    fn run(&self, out: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
        for (i, piece) in out.chunks_mut(chunk.max(1)).enumerate() {
            f(i * chunk.max(1), piece);
        }
    }
}

#[cfg(feature = "std")]
pub use std_threads::Threads;

#[cfg(feature = "std")]
mod std_threads {
    use super::Parallel;
    use std::vec::Vec;

    /// The std host's [`Parallel`]: splits work across `n` threads (the calling thread plus `n - 1` scoped workers).
    pub struct Threads {
        n: usize,
    }

    impl Threads {
        /// `n` threads; `0` means one per available core.
        pub fn new(n: usize) -> Self {
            let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
            Threads { n }
        }
    }

    impl Parallel for Threads {
        fn n_threads(&self) -> usize {
            self.n
        }

        fn run(&self, out: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
            let chunk = chunk.max(1);
            if self.n <= 1 || out.len() <= chunk {
                for (i, piece) in out.chunks_mut(chunk).enumerate() {
                    f(i * chunk, piece);
                }
                return;
            }
            // Deal chunks round-robin to the threads; each owns its pieces exclusively.
            let mut per_thread: Vec<Vec<(usize, &mut [f32])>> = (0..self.n).map(|_| Vec::new()).collect();
            for (i, piece) in out.chunks_mut(chunk).enumerate() {
                per_thread[i % self.n].push((i * chunk, piece));
            }
            let mut groups = per_thread.into_iter();
            let mine = groups.next().unwrap_or_default();
            std::thread::scope(|s| {
                for g in groups {
                    s.spawn(move || {
                        for (first, piece) in g {
                            f(first, piece);
                        }
                    });
                }
                for (first, piece) in mine {
                    f(first, piece);
                }
            });
        }
    }
}
