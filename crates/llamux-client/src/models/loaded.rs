//! A model file mapped, parsed and bound — with its matrices interleaved where that pays
//! ([`Layout`], [`Workload`]) — for every host in userspace: the `llamux` CLI and the in-process
//! backend of the tools.

use super::mapped::MappedFile;
use anyhow::{bail, Result};
use llamux_core::gguf::Gguf;
use llamux_core::model::{InterleavedWeights, Model};
pub use llamux_core::quant::interleaved::Workload;
use llamux_core::tokenizer::Tokenizer;
use std::path::Path;

/// A model file mapped and parsed, kept alive for the model and tokenizer that borrow it; with
/// the interleaved copies of its matrices where the layout is in use ([`Layout`]).
pub struct Loaded {
    file: MappedFile,
    interleaved: std::cell::OnceCell<InterleavedWeights>,
}

/// How matrices are laid out in memory: as stored in the file (read in place), or with their rows
/// interleaved eight by eight where the format has that layout (a copy made at load time, the
/// file's pages of those matrices released). `LLAMUX_LAYOUT=rows|interleaved`; by default
/// interleaved wherever the CPU has the SIMD kernels for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As stored.
    Rows,
    /// Interleaved.
    Interleaved,
}

impl Layout {
    /// The layout chosen by `LLAMUX_LAYOUT`, else the default for this CPU.
    pub fn chosen() -> Result<Layout> {
        match std::env::var("LLAMUX_LAYOUT").ok().as_deref() {
            Some("rows") => Ok(Layout::Rows),
            Some("interleaved") => Ok(Layout::Interleaved),
            Some(other) => bail!("LLAMUX_LAYOUT={other}: expected rows or interleaved"),
            None if llamux_core::quant::interleaved::kernels(llamux_core::isa::current()) => Ok(Layout::Interleaved),
            None => Ok(Layout::Rows),
        }
    }
}

impl Loaded {
    /// Maps the model file at `path`; with a trusted key configured, refuses it unless it is
    /// signed with that key ([`super::trust`]).
    pub fn open(path: &Path) -> Result<Self> {
        let file = MappedFile::open(path)?;
        super::trust::enforce(path, file.bytes())?;
        Ok(Loaded { file, interleaved: std::cell::OnceCell::new() })
    }

    /// Bytes of interleaved weights held (0 with the stored layout).
    pub fn interleaved_bytes(&self) -> usize {
        self.interleaved.get().map_or(0, InterleavedWeights::bytes)
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// Parses the file and binds model and tokenizer, the matrices in the chosen [`Layout`]
    /// (interleaved where that pays for `workload`).
    pub fn bind(&self, workload: Workload) -> Result<(Model<'_>, Tokenizer<'_>)> {
        let layout = Layout::chosen()?;
        let g = Gguf::parse(self.file.bytes())?;
        let mut model = Model::load(&g)?;
        let tok = Tokenizer::from_gguf(&g)?;
        if layout == Layout::Interleaved && model.interleaved_bytes(workload) > 0 {
            if self.interleaved.get().is_none() {
                // Reading the norms and the vocabulary mapped whole folios of the file around
                // them: let the matrices' pages go before copying them, and each piece after.
                model.matrices().for_each(|m| self.file.release(m.data()));
                let _ = self.interleaved.set(model.interleave(workload, |piece| self.file.release(piece))?);
            }
            if let Some(w) = self.interleaved.get() {
                model.use_interleaved(w)?;
            }
        }
        Ok((model, tok))
    }

    /// Parses the file and binds its tokenizer only (a vocabulary-only file is enough).
    pub fn tokenizer(&self) -> Result<Tokenizer<'_>> {
        let g = Gguf::parse(self.file.bytes())?;
        Ok(Tokenizer::from_gguf(&g)?)
    }
}
