//! Opening a GGUF file: memory-mapped, parsed in place.

use anyhow::{Context, Result};
use memmap2::Mmap;
use std::fs::File;
use std::path::Path;

/// A read-only memory map of a model file.
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the mapping is read-only. Its contents are treated as untrusted and every access is
        // bounds-checked against the (fixed) length. The remaining hazard of any file mapping, another
        // process truncating the file, faults the process rather than reading freed memory; cached
        // models are written under a temporary name and renamed into place, never rewritten.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        Ok(Self { map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Lets the pages wholly inside `part` (a slice of [`bytes`](Self::bytes)) go: they are read
    /// again from the file if touched.
    pub fn release(&self, part: &[u8]) {
        let base = self.map.as_ptr() as usize;
        let Some(start) = (part.as_ptr() as usize).checked_sub(base) else { return };
        let end = start + part.len();
        if end > self.map.len() {
            return;
        }
        let page = 4096;
        let (first, last) = (start.next_multiple_of(page), end / page * page);
        if last > first {
            // SAFETY: the range is inside this read-only private file mapping; after
            // MADV_DONTNEED its pages read the file's contents again, which never change (see
            // `open`), so every borrowed slice keeps its bytes.
            let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, last - first) };
        }
    }
}
