//! `llamux quantize`: requantize a GGUF model to a llama.cpp file type, and the row-parallel
//! quantization shared with `llamux synth`.

use crate::mapped::MappedFile;
use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use llamux_core::gguf::{Gguf, GgufWriter, IoSink, MetaValue};
use llamux_core::model::{FileType, TensorRole};
use llamux_core::quant::traits;
use llamux_core::GgmlType;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Quantizes `n_rows` rows of `row_len` floats to `ty`, splitting rows across threads.
/// `fill(row_index, row)` produces the floats of one row.
pub fn quantize_rows<F>(ty: GgmlType, n_rows: usize, row_len: usize, fill: F) -> Result<Vec<u8>>
where
    F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
{
    let row_bytes = ty.bytes_for(row_len as u64).and_then(|b| usize::try_from(b).ok()).context("row size")?;
    let tr = traits(ty)?;
    let total = row_bytes.checked_mul(n_rows).context("tensor size overflows")?;
    let mut out = vec![0u8; total];
    if total == 0 {
        return Ok(out);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows_per = n_rows.div_ceil(threads).max(1);
    let fill = &fill;
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = out
            .chunks_mut(rows_per * row_bytes)
            .enumerate()
            .map(|(chunk, dst)| {
                s.spawn(move || -> Result<()> {
                    let mut row = vec![0f32; row_len];
                    for (r, dst_row) in dst.chunks_mut(row_bytes).enumerate() {
                        fill(chunk * rows_per + r, &mut row)?;
                        (tr.from_float)(&row, dst_row)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow!("a quantization thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(out)
}

/// A progress bar over parameters.
pub fn params_bar(total: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(&format!("{label} {{msg:28}} [{{bar:40}}] {{percent:>3}}% {{eta}}"))
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Writes `w`'s header and then each tensor produced by `data(index)` to `out`, atomically
/// (a temporary file renamed into place).
pub fn write_model<F>(w: &GgufWriter, out: &Path, n_tensors: usize, mut data: F) -> Result<u64>
where
    F: FnMut(usize) -> Result<Vec<u8>>,
{
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
    let tmp = tempfile::NamedTempFile::new_in(&dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut stream = w.start(IoSink(BufWriter::with_capacity(1 << 20, tmp.as_file()))).map_err(|e| anyhow!("{e}"))?;
    for i in 0..n_tensors {
        stream.write_tensor(&data(i)?).map_err(|e| anyhow!("{e}"))?;
    }
    let IoSink(mut buf) = stream.finish().map_err(|e| anyhow!("{e}"))?;
    std::io::Write::flush(&mut buf)?;
    drop(buf);
    tmp.persist(out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok(std::fs::metadata(out)?.len())
}

/// Arguments of `llamux quantize`.
#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// Input model (any supported tensor types).
    input: String,
    /// Output file.
    output: PathBuf,
    /// llama.cpp file type: q4_k_m, q8_0, f16, q6_k, …
    ftype: String,
    /// Give every matrix the file type's base type, without llama.cpp's per-tensor mix.
    #[arg(long)]
    pure: bool,
}

/// Parses a `--ftype` value.
pub fn parse_ftype(s: &str) -> Result<FileType> {
    FileType::from_name(s).with_context(|| {
        let names: Vec<_> = FileType::ALL.iter().map(|f| f.name().to_lowercase()).collect();
        format!("unknown file type {s} (one of: {})", names.join(", "))
    })
}

/// Runs `llamux quantize`.
pub fn run(a: QuantizeArgs) -> Result<()> {
    let ftype = parse_ftype(&a.ftype)?;
    let path = crate::resolve_model(&a.input)?;
    let file = MappedFile::open(&path)?;
    let g = Gguf::parse(file.bytes()).with_context(|| format!("{}", path.display()))?;
    let n_layer = g
        .architecture()
        .and_then(|arch| g.get_u64(&format!("{arch}.block_count")))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);

    let mut w = GgufWriter::new();
    for kv in g.metadata() {
        let v = if kv.key == "general.file_type" { MetaValue::U32(ftype.id()) } else { kv.value.into() };
        w.add(kv.key, v).map_err(|e| anyhow!("{e}"))?;
    }
    if g.get("general.file_type").is_none() {
        w.add("general.file_type", MetaValue::U32(ftype.id())).map_err(|e| anyhow!("{e}"))?;
    }
    let mut targets = Vec::new();
    for t in g.tensors() {
        let role = TensorRole::from_name(t.name, t.n_dims);
        let ty = if a.pure && role != TensorRole::Vector {
            ftype.tensor_type(TensorRole::OtherMatrix, n_layer, t.row_len())
        } else {
            ftype.tensor_type(role, n_layer, t.row_len())
        };
        // Tensors the engine cannot decode (and non-float types) are copied as they are.
        let ty = if traits(t.ggml_type).is_ok() && traits(ty).is_ok() { ty } else { t.ggml_type };
        w.add_tensor(t.name, t.dims(), ty).map_err(|e| anyhow!("{e}"))?;
        targets.push(ty);
    }
    let total: u64 = g.tensors().iter().map(|t| t.n_elements()).sum();
    let pb = params_bar(total, "quantize");
    let size = write_model(&w, &a.output, g.tensors().len(), |i| {
        let (t, ty) = (&g.tensors()[i], targets[i]);
        pb.set_message(t.name.to_string());
        let src = g.tensor_data(t);
        let out = if ty == t.ggml_type {
            src.to_vec()
        } else {
            let src_tr = traits(t.ggml_type)?;
            let src_row = t.ggml_type.bytes_for(t.row_len()).context("row size")? as usize;
            quantize_rows(ty, t.n_rows() as usize, t.row_len() as usize, |r, row| {
                let bytes = src.get(r * src_row..(r + 1) * src_row).context("row out of range")?;
                (src_tr.to_float)(bytes, row)?;
                Ok(())
            })?
        };
        pb.inc(t.n_elements());
        Ok(out)
    })?;
    pb.finish_and_clear();
    eprintln!(
        "wrote {} ({}{}, {:.1} MiB)",
        a.output.display(),
        ftype.name(),
        if a.pure { ", pure" } else { "" },
        size as f64 / 1048576.0
    );
    Ok(())
}
