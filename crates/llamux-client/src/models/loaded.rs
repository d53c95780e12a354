//! A model file mapped, parsed and bound — with its matrices interleaved where that pays
//! ([`Layout`], [`Workload`]) and copied into huge pages where they are available
//! ([`Residence`]) — for every host in userspace: the `llamux` CLI and the in-process backend of
//! the tools.

use super::mapped::MappedFile;
use anyhow::{bail, Result};
use llamux_core::gguf::Gguf;
use llamux_core::model::{InterleavedWeights, Model};
pub use llamux_core::quant::interleaved::Workload;
use llamux_core::tokenizer::Tokenizer;
use std::path::Path;

/// A model file mapped and parsed, kept alive for the model and tokenizer that borrow it; with
/// the copy of its matrices where one is made ([`Layout`], [`Residence`]).
pub struct Loaded {
    file: MappedFile,
    /// The matrices' copy and the workload it was interleaved for (`None`: as stored).
    copy: std::cell::OnceCell<(Option<Workload>, InterleavedWeights)>,
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

/// Where the matrices a token reads are kept: in the file's pages (mapped, shared with every
/// process that maps the file), or copied at load time into the process's memory, which the
/// binaries' allocator puts in 2 MiB pages ([`super::huge_pages`]): far fewer TLB misses while
/// the weights stream by, at the price of the page cache's sharing and of a copy at load time:
/// about 0.1 s per 500 MiB where the memory is backed already, but ten times that in a virtual
/// machine whose host backs each fresh page on first touch. So each host says what it prefers:
/// copied for long runs (`bench`, `serve`, `chat`), mapped for one-shot ones (`run`, the tools'
/// requests). `LLAMUX_WEIGHTS=mapped|copied` overrides it; copying needs transparent huge pages
/// and this process's allocator using them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residence {
    /// Read in place from the mapped file.
    Mapped,
    /// Copied into huge pages.
    Copied,
}

impl Residence {
    /// The residence chosen by `LLAMUX_WEIGHTS`, else `preferred` where huge pages can be had.
    pub fn chosen(preferred: Residence) -> Result<Residence> {
        match std::env::var("LLAMUX_WEIGHTS").ok().as_deref() {
            Some("mapped") => Ok(Residence::Mapped),
            Some("copied") => Ok(Residence::Copied),
            Some(other) => bail!("LLAMUX_WEIGHTS={other}: expected mapped or copied"),
            None if preferred == Residence::Copied && super::huge_pages::available() && super::huge_pages::in_use() => {
                Ok(Residence::Copied)
            }
            None => Ok(Residence::Mapped),
        }
    }
}

impl Loaded {
    /// Maps the model file at `path`; with a trusted key configured, refuses it unless it is
    /// signed with that key ([`super::trust`]).
    pub fn open(path: &Path) -> Result<Self> {
        let file = MappedFile::open(path)?;
        super::trust::enforce(path, file.bytes())?;
        Ok(Loaded { file, copy: std::cell::OnceCell::new() })
    }

    /// Bytes of interleaved weights held (0 with the stored layout).
    pub fn interleaved_bytes(&self) -> usize {
        self.copy.get().map_or(0, |(w, c)| if w.is_some() { c.bytes() } else { 0 })
    }

    /// Bytes of the matrices' copy, interleaved or not (0 when they are read from the file).
    pub fn copied_bytes(&self) -> usize {
        self.copy.get().map_or(0, |(_, c)| c.bytes())
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// Parses the file and binds model and tokenizer, the matrices in the chosen [`Layout`]
    /// (interleaved where that pays for `workload`) and [`Residence`] (`preferred` unless
    /// overridden). The copy is made once, by the first call: later ones use it whatever their
    /// workload.
    pub fn bind(&self, workload: Workload, preferred: Residence) -> Result<(Model<'_>, Tokenizer<'_>)> {
        let layout = Layout::chosen()?;
        let residence = Residence::chosen(preferred)?;
        let g = Gguf::parse(self.file.bytes())?;
        let mut model = Model::load(&g)?;
        let tok = Tokenizer::from_gguf(&g)?;
        let interleave = layout == Layout::Interleaved && model.interleaved_bytes(workload) > 0;
        if self.copy.get().is_none() && (interleave || residence == Residence::Copied) {
            // Reading the norms and the vocabulary mapped whole folios of the file around them:
            // let the matrices' pages go before copying them, and each piece after.
            model.matrices().for_each(|m| self.file.release(m.data()));
            let w = interleave.then_some(workload);
            let _ = self.copy.set((w, model.interleave(w, |piece| self.file.release(piece))?));
        }
        if let Some((_, c)) = self.copy.get() {
            model.use_interleaved(c)?;
        }
        Ok((model, tok))
    }

    /// Parses the file and binds its tokenizer only (a vocabulary-only file is enough).
    pub fn tokenizer(&self) -> Result<Tokenizer<'_>> {
        let g = Gguf::parse(self.file.bytes())?;
        Ok(Tokenizer::from_gguf(&g)?)
    }
}
