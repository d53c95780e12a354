//! The engine's C ABI for the Linux kernel module. The C shim (`kernel/llamux_main.c`) owns
//! everything kernel-facing and calls in here only between `kernel_fpu_begin()` and
//! `kernel_fpu_end()`; memory comes from the shim's `kvmalloc`, panics are reported through it
//! (`llamux_shim_panic` never returns: it abandons the panicking call, see the shim).

#![no_std]
// `Box::try_new`: a session's allocation failing is an error, not a panic (this crate is only
// built with nightly, by kernel/build.sh).
#![feature(allocator_api)]
// Kernel code never panics: no indexing that can go out of bounds, no unwrap or expect, no
// panic! (but at the fault-injection sites of debug builds: `injected_panic`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

extern crate alloc;

mod audit_log;
mod trust;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::fmt::Write;
use llamux_core::chat::{ChatTemplate, Message, Role};
use llamux_core::gguf::{Gguf, GgufErrorKind};
use llamux_core::model::{Model, ModelError};
use llamux_core::platform::Parallel;
use llamux_core::sample::{Sampler, SamplerConfig, SamplerError};
use llamux_core::session::{
    BatchScratch, GenerateError, Generation, KvType, Session, SessionError, Step, DEFAULT_MAX_BATCH,
};
use llamux_core::tokenizer::{Tokenizer, VocabError};

extern "C" {
    fn llamux_shim_alloc(size: usize) -> *mut u8;
    fn llamux_shim_free(ptr: *mut u8);
    fn llamux_shim_panic(msg: *const u8, len: usize) -> !;
    fn llamux_shim_threads() -> usize;
    fn llamux_shim_fault(site: u32) -> bool;
    fn llamux_shim_yield();
    fn llamux_shim_parallel(
        ctx: *const core::ffi::c_void,
        n_chunks: usize,
        chunk: extern "C" fn(*const core::ffi::c_void, usize),
    );
}

/// The kernel host's [`Parallel`]: chunks run on the shim's pool of kernel threads (each in its
/// own FPU section), the caller taking part.
struct KernelThreads;

/// One `for_each` call, shared with the worker threads.
struct Job<'a> {
    n_tasks: usize,
    f: &'a (dyn Fn(usize) + Sync),
}

/// Fault-injection sites (`fault=` of the module's debug builds; never true in release builds):
/// a decoding step, a parallel task (the shim picks a worker's or the pool owner's), a
/// session's setup.
const FAULT_STEP: u32 = 1;
const FAULT_TASK: u32 = 2;
const FAULT_SESSION: u32 = 3;

fn fault(site: u32) -> bool {
    // SAFETY: a plain query of the shim.
    unsafe { llamux_shim_fault(site) }
}

/// The panic of a fault-injection site: the only `panic!` of this crate, for the VM test of
/// panic containment (reached in debug builds only; see [`fault`]).
#[allow(clippy::panic)]
#[cold]
fn injected_panic(site: &str) -> ! {
    panic!("fault injected in {site}")
}

extern "C" fn run_task(ctx: *const core::ffi::c_void, i: usize) {
    if fault(FAULT_TASK) {
        injected_panic("a parallel task");
    }
    // SAFETY: `ctx` is the `Job` of the `for_each` call that is waiting for this task.
    let job = unsafe { &*(ctx as *const Job<'_>) };
    if i < job.n_tasks {
        (job.f)(i);
    }
}

impl Parallel for KernelThreads {
    fn n_threads(&self) -> usize {
        // SAFETY: a plain query of the shim.
        unsafe { llamux_shim_threads() }.max(1)
    }

    fn for_each(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let job = Job { n_tasks, f };
        // SAFETY: the shim calls `run_task` once for each index below `n_tasks` and returns
        // only when all calls have returned, so `job` outlives them.
        unsafe { llamux_shim_parallel(&job as *const Job<'_> as *const core::ffi::c_void, n_tasks, run_task) };
    }
}

/// Allocations go to the shim (`kvmalloc`), which guarantees 8-byte alignment; larger alignments
/// are served by over-allocating and storing the original pointer just before the block.
struct KernelAlloc;

const BASE_ALIGN: usize = 8;

unsafe impl GlobalAlloc for KernelAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= BASE_ALIGN {
            // SAFETY: the shim returns null or a block of at least `size` bytes, 8-aligned.
            return unsafe { llamux_shim_alloc(layout.size().max(1)) };
        }
        let Some(total) = layout.size().checked_add(layout.align() + BASE_ALIGN) else { return core::ptr::null_mut() };
        // SAFETY: as above.
        let raw = unsafe { llamux_shim_alloc(total) };
        if raw.is_null() {
            return raw;
        }
        let start = (raw as usize + BASE_ALIGN).next_multiple_of(layout.align());
        let user = start as *mut u8;
        // SAFETY: `start - 8 >= raw` and lies inside the block; it is 8-aligned.
        unsafe { (user as *mut usize).sub(1).write(raw as usize) };
        user
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= BASE_ALIGN {
            // SAFETY: `ptr` came from `llamux_shim_alloc`.
            unsafe { llamux_shim_free(ptr) };
        } else {
            // SAFETY: `alloc` stored the original pointer just before the block.
            unsafe { llamux_shim_free((ptr as *const usize).sub(1).read() as *mut u8) };
        }
    }
}

#[global_allocator]
static ALLOC: KernelAlloc = KernelAlloc;

/// Formats into a fixed buffer (no allocation while panicking).
struct StackWriter {
    buf: [u8; 256],
    len: usize,
}

impl Write for StackWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len().saturating_sub(self.len));
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut w = StackWriter { buf: [0; 256], len: 0 };
    let _ = write!(w, "{info}");
    // SAFETY: the pointer and length describe `w.buf`'s initialized prefix.
    unsafe { llamux_shim_panic(w.buf.as_ptr(), w.len) }
}

/// Linux's `ENOMEM`: memory ran out.
const ENOMEM: isize = 12;
/// Linux's `E2BIG`: the result does not fit the caller's buffer.
const E2BIG: isize = 7;
/// Linux's `EINVAL`: the input (model, prompt, configuration) was refused.
const EINVAL: isize = 22;

/// The kernel's `ERR_PTR(-errno)`: constructors return null never, a live object or an error
/// pointer the shim reads with `IS_ERR`/`PTR_ERR`.
fn err_ptr<T>(errno: isize) -> *mut T {
    // The last page of the address space is never a valid object: -4095..-1 encode errors.
    (-errno) as usize as *mut T
}

/// A loaded model and its tokenizer, borrowing the model bytes the shim keeps alive.
pub struct Engine {
    model: Model<'static>,
    tok: Tokenizer<'static>,
    /// The chat format named by `tokenizer.chat_template`, when it is one the core knows.
    template: Option<ChatTemplate>,
}

/// One generation: prompt tokens still to feed, the session and the sampler.
pub struct LxSession {
    sess: Session,
    gen: Generation,
}

fn write_err(err: *mut u8, err_len: usize, msg: core::fmt::Arguments<'_>) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let mut w = StackWriter { buf: [0; 256], len: 0 };
    let _ = w.write_fmt(msg);
    let n = w.len.min(err_len - 1);
    // SAFETY: the shim passes a writable buffer of `err_len` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(w.buf.as_ptr(), err, n);
        err.add(n).write(0);
    }
}

/// Parses a GGUF model held in `data[..len]`, which must stay valid until
/// [`llamux_engine_free`]. On failure returns `ERR_PTR(-EINVAL)` (an unusable model) or
/// `ERR_PTR(-ENOMEM)`, with a message in `err`.
///
/// # Safety
/// `data` points to `len` readable bytes; `err` to `err_len` writable bytes (or is null).
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_new(data: *const u8, len: usize, err: *mut u8, err_len: usize) -> *mut Engine {
    if data.is_null() {
        write_err(err, err_len, format_args!("no model data"));
        return err_ptr(EINVAL);
    }
    // SAFETY: the shim guarantees `data[..len]` is readable until the engine is freed.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(data, len) };
    let g = match Gguf::parse(bytes) {
        Ok(g) => g,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            return err_ptr(if e.kind == GgufErrorKind::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    let model = match Model::load(&g) {
        Ok(m) => m,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            return err_ptr(if e == ModelError::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    let tok = match Tokenizer::from_gguf(&g) {
        Ok(t) => t,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            return err_ptr(if e == VocabError::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    let template = g.get_str("tokenizer.chat_template").and_then(ChatTemplate::detect);
    match Box::try_new(Engine { model, tok, template }) {
        Ok(b) => Box::into_raw(b),
        Err(_) => {
            write_err(err, err_len, format_args!("out of memory for the engine"));
            err_ptr(ENOMEM)
        }
    }
}

/// Frees an engine (all its sessions must be freed first).
///
/// # Safety
/// `e` came from [`llamux_engine_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_free(e: *mut Engine) {
    if !e.is_null() {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(e) });
    }
}

/// Vocabulary size and context length of the model, for status reports.
///
/// # Safety
/// `e` is a live engine.
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_info(
    e: *const Engine,
    n_vocab: *mut u32,
    n_ctx_train: *mut u32,
    n_layer: *mut u32,
) {
    // SAFETY: the shim passes a live engine and writable outputs.
    let e = unsafe { &*e };
    unsafe {
        *n_vocab = e.model.hp.n_vocab;
        *n_ctx_train = e.model.hp.n_ctx_train;
        *n_layer = e.model.hp.n_layer;
    }
}

/// Bytes of the KV cache (f16 keys and values, every layer) of a session of `n_ctx` positions,
/// what [`llamux_session_new`] allocates for it besides a few per-token buffers; saturating.
///
/// # Safety
/// `e` is a live engine.
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_kv_bytes(e: *const Engine, n_ctx: u32) -> isize {
    // SAFETY: the shim passes a live engine.
    let e = unsafe { &*e };
    let n = (e.model.hp.n_layer as usize)
        .saturating_mul(n_ctx.max(1) as usize)
        .saturating_mul(e.model.kv_dim())
        .saturating_mul(2 * core::mem::size_of::<u16>());
    n.min(isize::MAX as usize) as isize
}

/// The most bytes of text one decoding step can give a session: the longest token's text (a
/// token's bytes are never more than its stored text's) and a UTF-8 sequence carried over.
///
/// # Safety
/// `e` is a live engine.
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_max_piece(e: *const Engine) -> isize {
    // SAFETY: the shim passes a live engine.
    let e = unsafe { &*e };
    let v = &e.tok.vocab;
    let longest = (0..v.len()).filter_map(|id| v.text(u32::try_from(id).ok()?)).map(str::len).max().unwrap_or(0);
    longest.saturating_add(4).min(isize::MAX as usize) as isize
}

/// Formats `user[..len]` as one user message in the model's chat format, opening the model's
/// turn, into `out` (NUL-terminated). Returns the formatted length; 0 when the model has no
/// known chat format (the caller uses plain text); `-E2BIG` when it does not fit `out_len - 1`
/// bytes; `-EINVAL` when `user` is not UTF-8.
///
/// # Safety
/// `e` is a live engine; `user` points to `len` bytes; `out` to `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn llamux_engine_chat(
    e: *const Engine,
    user: *const u8,
    len: usize,
    out: *mut u8,
    out_len: usize,
) -> isize {
    // SAFETY: the shim passes a live engine and `len` readable bytes.
    let (e, user) = unsafe { (&*e, core::slice::from_raw_parts(user, len)) };
    let Some(template) = e.template else { return 0 };
    let Ok(user) = core::str::from_utf8(user) else { return -EINVAL };
    let text = template.apply(&[Message { role: Role::User, content: user.into() }], true);
    if out.is_null() || text.len() >= out_len {
        return -E2BIG;
    }
    // SAFETY: `out` has room for the text and its NUL (checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), out, text.len());
        out.add(text.len()).write(0);
    }
    text.len() as isize
}

/// Sampling and limits of a new session.
#[repr(C)]
pub struct LxConfig {
    /// Context length.
    pub n_ctx: u32,
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// Temperature × 1000 (0 = greedy); integers keep floating point out of the C shim.
    pub temp_milli: u32,
    /// Top-k (0 = off).
    pub top_k: u32,
    /// Top-p × 1000.
    pub top_p_milli: u32,
    /// Seed.
    pub seed: u64,
}

/// Starts a session for `prompt[..len]` (tokenized with BOS as the model asks). On failure
/// returns `ERR_PTR(-EINVAL)` (empty after tokenization, longer than the context, a refused
/// configuration) or `ERR_PTR(-ENOMEM)`, with a message in `err`.
///
/// # Safety
/// `e` is a live engine; `prompt` points to `len` bytes; `err` as in [`llamux_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn llamux_session_new(
    e: *const Engine,
    cfg: *const LxConfig,
    prompt: *const u8,
    len: usize,
    err: *mut u8,
    err_len: usize,
) -> *mut LxSession {
    // SAFETY: the shim passes live pointers.
    let (e, cfg) = unsafe { (&*e, &*cfg) };
    if fault(FAULT_SESSION) {
        injected_panic("a session's setup");
    }
    let text: &[u8] = if prompt.is_null() { &[] } else { unsafe { core::slice::from_raw_parts(prompt, len) } };
    // Tokenizing a long prompt (64 KiB: some hundred thousand merge steps) makes no parallel
    // operation, the engine's other scheduling point: the shim reschedules between its pieces.
    // SAFETY: a plain call of the shim, which may leave and re-enter the FPU section.
    let prompt = e.tok.encode_yielding(text, true, true, &mut || unsafe { llamux_shim_yield() });
    let n_ctx = cfg.n_ctx.max(1) as usize;
    if prompt.is_empty() {
        write_err(err, err_len, format_args!("empty prompt"));
        return err_ptr(EINVAL);
    }
    if prompt.len() >= n_ctx {
        write_err(err, err_len, format_args!("prompt has {} tokens, context is {n_ctx}", prompt.len()));
        return err_ptr(EINVAL);
    }
    let sc = SamplerConfig {
        temperature: cfg.temp_milli as f32 / 1000.0,
        top_k: cfg.top_k as usize,
        top_p: (cfg.top_p_milli.min(1000)) as f32 / 1000.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed: cfg.seed,
    };
    let sampler = match Sampler::new(sc, e.model.hp.n_vocab as usize) {
        Ok(s) => s,
        Err(er) => {
            write_err(err, err_len, format_args!("{er}"));
            return err_ptr(if er == SamplerError::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    let gen = match Generation::new(sampler, prompt, 0, cfg.max_tokens as usize, &[]) {
        Ok(g) => g,
        Err(er) => {
            write_err(err, err_len, format_args!("{er}"));
            return err_ptr(if er == GenerateError::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    // Sizes follow the configured context: allocation failure is an error, never a panic.
    let sess = match Session::with_options(&e.model, n_ctx, KvType::F16, DEFAULT_MAX_BATCH) {
        Ok(s) => s,
        Err(er) => {
            write_err(err, err_len, format_args!("{er} ({n_ctx} positions)"));
            return err_ptr(if er == SessionError::OutOfMemory { ENOMEM } else { EINVAL });
        }
    };
    match Box::try_new(LxSession { sess, gen }) {
        Ok(b) => Box::into_raw(b),
        Err(_) => {
            write_err(err, err_len, format_args!("out of memory for a session"));
            err_ptr(ENOMEM)
        }
    }
}

/// Feeds one chunk of the prompt (at most the session's `max_batch` tokens, one pass over the
/// weights) and stores how many tokens it fed in `fed`. Returns 1 while prompt tokens are left,
/// 0 once the prompt is in the cache (the session decodes from then on, through
/// [`llamux_decode_step`]), `-1` when generation has ended, `-2` on an internal error.
///
/// # Safety
/// `e` and `s` are live; `fed` is writable.
#[no_mangle]
pub unsafe extern "C" fn llamux_session_prompt(e: *const Engine, s: *mut LxSession, fed: *mut u32) -> i32 {
    // SAFETY: the shim passes live pointers.
    let (e, s, fed) = unsafe { (&*e, &mut *s, &mut *fed) };
    *fed = 0;
    if s.gen.end().is_some() {
        return -1;
    }
    if !s.gen.feeding_prompt() {
        // Never a decoding step here: its text would have nowhere to go.
        return 0;
    }
    let before = s.gen.fed_tokens().len();
    let r = match s.gen.step(&e.model, &e.tok, &mut s.sess, &KernelThreads) {
        Ok(Step::End(_)) => -1,
        Ok(_) => 0,
        Err(_) => -2,
    };
    *fed = s.gen.fed_tokens().len().saturating_sub(before) as u32;
    if r == 0 {
        i32::from(s.gen.feeding_prompt())
    } else {
        r
    }
}

/// What one engine step asks of a session and tells about it ([`llamux_decode_step`]).
#[repr(C)]
pub struct LxSlot {
    /// In: the session, which has fed its prompt.
    pub session: *mut LxSession,
    /// In: room for the text of the step's token.
    pub out: *mut u8,
    /// In: bytes at `out`.
    pub out_len: u32,
    /// Out: bytes of text written to `out` (possibly 0: part of a UTF-8 sequence, or no token).
    pub len: u32,
    /// Out: tokens the session has generated so far.
    pub generated: u32,
    /// Out: 0 while generation goes on, 1 once it has ended, -1 on an internal error.
    pub status: i32,
}

/// The buffers of decoding steps shared by several sessions: [`BatchScratch`] and room for one
/// step's rows, all allocated once.
pub struct LxBatch {
    scratch: BatchScratch,
    n_ctx: usize,
    /// The sessions of this step's shared pass (valid only during [`llamux_decode_step`]).
    rows: Vec<*mut Session>,
    tokens: Vec<u32>,
    /// The slot of each row.
    slot_of: Vec<usize>,
}

/// Buffers for steps of up to `max_sessions` sessions with contexts of up to `n_ctx` positions
/// (a session with a longer context decodes on its own). Returns `ERR_PTR(-ENOMEM)` and a
/// message in `err` when memory runs out.
///
/// # Safety
/// `e` is a live engine; `err` as in [`llamux_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn llamux_batch_new(
    e: *const Engine,
    max_sessions: usize,
    n_ctx: usize,
    err: *mut u8,
    err_len: usize,
) -> *mut LxBatch {
    // SAFETY: the shim passes a live engine.
    let e = unsafe { &*e };
    let nb = max_sessions.max(1);
    let oom = || {
        write_err(err, err_len, format_args!("out of memory for decoding {nb} sessions together"));
        err_ptr(ENOMEM)
    };
    let Ok(scratch) = BatchScratch::try_new(&e.model, nb, n_ctx) else { return oom() };
    let (mut rows, mut tokens, mut slot_of) = (Vec::new(), Vec::new(), Vec::new());
    if rows.try_reserve_exact(nb).is_err()
        || tokens.try_reserve_exact(nb).is_err()
        || slot_of.try_reserve_exact(nb).is_err()
    {
        return oom();
    }
    match Box::try_new(LxBatch { scratch, n_ctx, rows, tokens, slot_of }) {
        Ok(b) => Box::into_raw(b),
        Err(_) => oom(),
    }
}

/// Frees decoding buffers.
///
/// # Safety
/// `b` came from [`llamux_batch_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llamux_batch_free(b: *mut LxBatch) {
    if !b.is_null() {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(b) });
    }
}

/// One decoding step for every session in `slots[..n]`: each samples its next token from its
/// logits and writes the token's text to its `out`, then all the sampled tokens are fed in one
/// pass over the weights (`Model::forward_multi`; a single session, or one whose context does
/// not fit the shared buffers, is fed alone, with the same results). No heap allocation. Returns
/// the number of sessions fed together.
///
/// # Safety
/// `e` and `b` are live; `slots` points to `n` slots whose sessions are live and whose `out`
/// points to `out_len` writable bytes; nothing else uses those sessions during the call.
#[no_mangle]
pub unsafe extern "C" fn llamux_decode_step(e: *const Engine, b: *mut LxBatch, slots: *mut LxSlot, n: usize) -> i32 {
    // SAFETY: the shim passes live pointers and `n` slots.
    let (e, b) = unsafe { (&*e, &mut *b) };
    let slots: &mut [LxSlot] =
        if slots.is_null() { &mut [] } else { unsafe { core::slice::from_raw_parts_mut(slots, n) } };
    let par = KernelThreads;
    if fault(FAULT_STEP) {
        injected_panic("a decoding step");
    }
    b.rows.clear();
    b.tokens.clear();
    b.slot_of.clear();
    // Sample every session; its token joins the shared pass (or is fed alone).
    for i in 0..slots.len() {
        let (head, rest) = slots.split_at_mut(i);
        let Some(slot) = rest.first_mut() else { break };
        slot.len = 0;
        slot.status = -1;
        // A session given twice would be two rows over one cache: the second is refused.
        if slot.session.is_null() || head.iter().any(|h| h.session == slot.session) {
            continue;
        }
        // SAFETY: a live session no other slot names, which nothing else uses during the call.
        let s = unsafe { &mut *slot.session };
        match s.gen.sample(&e.tok, &mut s.sess) {
            Some(Step::Token { piece, .. }) => {
                // Never cut: the shim sizes `out` by `llamux_engine_max_piece`; a piece that
                // does not fit anyway fails the session rather than losing text.
                if piece.len() > slot.out_len as usize || (!piece.is_empty() && slot.out.is_null()) {
                    continue;
                }
                if !piece.is_empty() {
                    // SAFETY: `out` has `out_len >= piece.len()` writable bytes.
                    unsafe { core::ptr::copy_nonoverlapping(piece.as_ptr(), slot.out, piece.len()) };
                    slot.len = piece.len() as u32;
                }
            }
            Some(_) => {}
            // Prompt tokens or an unfed token left: nothing to sample from (an earlier error).
            None => continue,
        }
        slot.status = 0;
        slot.generated = s.gen.generated() as u32;
        match s.gen.pending(&s.sess) {
            None => {}
            Some(t) if b.tokens.len() < b.scratch.max_batch() && s.sess.n_ctx() <= b.n_ctx => {
                b.tokens.push(t);
                b.slot_of.push(i);
            }
            // The shared buffers do not fit this session: it is fed alone.
            Some(t) => match e.model.forward_batch(&mut s.sess, &[t], &par) {
                Ok(_) => s.gen.fed_externally(),
                Err(_) => slot.status = -1,
            },
        }
    }
    // The shared pass. Rows point at the sessions only from here to its end.
    for &i in &b.slot_of {
        if let Some(slot) = slots.get(i) {
            // SAFETY: a live session (checked above); a raw pointer to its `sess` field, so no
            // reference to the whole session is held while the pass runs.
            b.rows.push(unsafe { core::ptr::addr_of_mut!((*slot.session).sess) });
        }
    }
    let shared = b.rows.len();
    let ok = match b.rows.as_mut_slice() {
        [] => true,
        // SAFETY: the row's session is live and used by nothing else during the call.
        [one] => e.model.forward_batch(unsafe { &mut **one }, &b.tokens, &par).is_ok(),
        rows => {
            // SAFETY: `*mut Session` and `&mut Session` have the same layout; every row points
            // to a live `Session`, each to a different one (distinct slots were checked), and
            // nothing else touches them until the slice is dropped at the end of this arm.
            let rows = unsafe { core::slice::from_raw_parts_mut(rows.as_mut_ptr().cast::<&mut Session>(), rows.len()) };
            e.model.forward_multi(rows, &b.tokens, &mut b.scratch, &par).is_ok()
        }
    };
    b.rows.clear();
    for &i in &b.slot_of {
        if let Some(slot) = slots.get_mut(i) {
            if ok {
                // SAFETY: as above; the pass is over and holds no pointer to it any more.
                unsafe { (*slot.session).gen.fed_externally() };
            } else {
                slot.status = -1;
            }
        }
    }
    for slot in slots.iter_mut().filter(|s| s.status == 0) {
        // SAFETY: a live session (status 0 is only left on checked slots).
        slot.status = i32::from(unsafe { (*slot.session).gen.end() }.is_some());
    }
    shared as i32
}

/// Frees a session.
///
/// # Safety
/// `s` came from [`llamux_session_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llamux_session_free(s: *mut LxSession) {
    if !s.is_null() {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(s) });
    }
}
