//! Buffers sized by the model or the host's settings, allocated fallibly: a size too large for
//! memory (or one that overflowed, saturated to `usize::MAX`) is an error, never a panic.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// `n` copies of `v`, or the allocation failure.
pub(crate) fn filled<T: Clone>(n: usize, v: T) -> Result<Vec<T>, TryReserveError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(n)?;
    buf.resize(n, v);
    Ok(buf)
}
