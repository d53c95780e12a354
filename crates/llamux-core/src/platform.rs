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
