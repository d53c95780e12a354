//! The module's trust services behind a C ABI: model signatures, the audit ring and per-uid
//! quotas, all `llamux_trust`'s, so that the kernel checks signatures, writes audit lines and
//! counts quotas exactly as userspace does. The shim keeps the locks; nothing here allocates
//! after the constructors.

use crate::audit_log::AuditLog;
use crate::{err_ptr, write_err, E2BIG, EINVAL, ENOMEM};
use alloc::boxed::Box;
use core::fmt::Write;
use llamux_trust::audit::{Line, Outcome, Record};
use llamux_trust::quota::{Limits, Quota, QuotaError};
use llamux_trust::sign::{self, SignError};

/// Linux's `EBUSY`: the uid has as many sessions open as it may.
const EBUSY: isize = 16;
/// Linux's `EUSERS`: the quota table counts as many uids as it holds.
const EUSERS: isize = 87;
/// Linux's `EDQUOT`: the uid used its tokens for this minute.
const EDQUOT: isize = 122;
/// Linux's `EBADMSG`: the signature file is malformed, or signs another file (tampered).
const EBADMSG: isize = 74;
/// Linux's `EKEYREJECTED`: signed by another key, or the signature does not verify.
const EKEYREJECTED: isize = 129;

/// Reads `len` bytes at `p` (none when null).
///
/// # Safety
/// `p` is null or points to `len` readable bytes that outlive the returned slice's use.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        // SAFETY: see above.
        unsafe { core::slice::from_raw_parts(p, len) }
    }
}

/// The NUL-terminated module parameter at `p` (empty when null).
///
/// # Safety
/// `p` is null or a NUL-terminated string that outlives the returned slice's use.
unsafe fn c_str<'a>(p: *const core::ffi::c_char) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        // SAFETY: see above.
        unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes()
    }
}

/// Whether the NUL-terminated `pubkey` is an Ed25519 public key (64 hex digits of a curve
/// point): 0, or `-EINVAL` with the reason in `err`.
///
/// # Safety
/// `pubkey` is a NUL-terminated string; `err` points to `err_len` writable bytes (or is null).
#[no_mangle]
pub unsafe extern "C" fn llamux_trust_key_ok(pubkey: *const core::ffi::c_char, err: *mut u8, err_len: usize) -> isize {
    // SAFETY: the shim passes its module parameter.
    match sign::parse_public_key(unsafe { c_str(pubkey) }) {
        Ok(_) => 0,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            -EINVAL
        }
    }
}

/// Checks the signature file `sig[..sig_len]` of a model whose SHA-256 is `sha256` against the
/// trusted key `pubkey` (NUL-terminated hex; `llamux_trust::sign::verify`, as `llamux verify`
/// does). Returns 0 when it verifies; else, with the reason in `err`: `-EINVAL` (not a public
/// key), `-EBADMSG` (a malformed signature file, or one that signs another file: the model was
/// changed), `-EKEYREJECTED` (signed by another key, or a signature that does not verify).
///
/// # Safety
/// `pubkey` is NUL-terminated, `sha256` points to 32 readable bytes and `sig` to `sig_len`;
/// `err` as above.
#[no_mangle]
pub unsafe extern "C" fn llamux_trust_verify(
    pubkey: *const core::ffi::c_char,
    sha256: *const [u8; 32],
    sig: *const u8,
    sig_len: usize,
    err: *mut u8,
    err_len: usize,
) -> isize {
    // SAFETY: the shim passes its parameter and a readable buffer of `sig_len` bytes.
    let (pubkey, sig) = unsafe { (c_str(pubkey), bytes(sig, sig_len)) };
    if sha256.is_null() {
        write_err(err, err_len, format_args!("no digest"));
        return -EINVAL;
    }
    // SAFETY: 32 readable bytes.
    let sha256 = unsafe { &*sha256 };
    let r = sign::parse_public_key(pubkey).and_then(|key| sign::verify(&key, sha256, sig));
    match r {
        Ok(()) => 0,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            match e {
                SignError::BadPublicKey | SignError::BadSecretKey => -EINVAL,
                SignError::Malformed(_) | SignError::Tampered { .. } => -EBADMSG,
                SignError::WrongKey { .. } | SignError::BadSignature => -EKEYREJECTED,
            }
        }
    }
}

/// One request's audit record, as the shim fills it (`struct lx_audit_rec`).
#[repr(C)]
pub struct LxAuditRecord {
    /// Seconds since the Unix epoch when it ended.
    pub time: u64,
    /// The asking process's effective uid (in the initial user namespace).
    pub uid: u32,
    /// The asking process's pid (in the initial pid namespace).
    pub pid: u32,
    /// Its command name, NUL-padded.
    pub comm: [u8; 16],
    /// SHA-256 of the prompt as written.
    pub prompt_sha256: [u8; 32],
    /// Prompt tokens fed.
    pub tokens_in: u32,
    /// Tokens generated.
    pub tokens_out: u32,
    /// `llamux_trust::audit::Outcome` as a number.
    pub outcome: u32,
}

/// The newest audit records ([`AuditLog`]).
pub struct LxAudit(AuditLog);

/// A log of the newest `served` records of requests that ran and the newest `refused` refusals
/// (each at least one), recording at most `per_minute` refusals of each uid a minute, for up to
/// `uids` uids at once ([`AuditLog`]), or `ERR_PTR(-ENOMEM)`.
///
/// # Safety
/// `err` as in [`llamux_trust_key_ok`].
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_new(
    served: usize,
    refused: usize,
    uids: usize,
    per_minute: u32,
    err: *mut u8,
    err_len: usize,
) -> *mut LxAudit {
    let oom = || {
        write_err(err, err_len, format_args!("out of memory for {served} and {refused} audit records"));
        err_ptr(ENOMEM)
    };
    let Ok(log) = AuditLog::try_new(served, refused, uids, per_minute) else { return oom() };
    match Box::try_new(LxAudit(log)) {
        Ok(b) => Box::into_raw(b),
        Err(_) => oom(),
    }
}

/// Frees a ring.
///
/// # Safety
/// `a` came from [`llamux_audit_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_free(a: *mut LxAudit) {
    if !a.is_null() {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(a) });
    }
}

/// Adds a record at `now_ms` (a monotonic clock; the oldest of its kind is dropped when its
/// ring is full); returns its sequence number, or 0 for a refusal over its uid's limit, which
/// is only counted ([`llamux_audit_suppressed`]).
///
/// # Safety
/// `a` is live and used by nothing else during the call; `r` points to a record.
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_push(a: *mut LxAudit, r: *const LxAuditRecord, now_ms: u64) -> u64 {
    // SAFETY: the shim passes a live ring, under its lock, and a record.
    let (a, r) = unsafe { (&mut *a, &*r) };
    let mut rec = Record::new(r.time, r.prompt_sha256, Outcome::from_u32(r.outcome).unwrap_or(Outcome::Failed));
    rec.uid = Some(r.uid);
    rec.pid = Some(r.pid);
    rec.comm = r.comm;
    rec.tokens_in = r.tokens_in;
    rec.tokens_out = r.tokens_out;
    a.0.push(rec, now_ms)
}

/// Refusals not recorded, over their uid's limit.
///
/// # Safety
/// `a` is live.
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_suppressed(a: *const LxAudit) -> u64 {
    // SAFETY: the shim passes a live ring.
    unsafe { &*a }.0.suppressed()
}

/// Records held.
///
/// # Safety
/// `a` is live.
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_len(a: *const LxAudit) -> usize {
    // SAFETY: the shim passes a live ring.
    unsafe { &*a }.0.len()
}

/// Writes into a fixed buffer, failing when it is full.
struct Buf<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.out.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The `i`-th record held (oldest first) as its audit line (`llamux_trust::audit::Line`) and a
/// newline, NUL-terminated in `out`: its length; `-EINVAL` when there is no such record,
/// `-E2BIG` when it does not fit `out_len - 1` bytes.
///
/// # Safety
/// `a` is live and not changed during the call; `out` points to `out_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn llamux_audit_line(a: *const LxAudit, i: usize, out: *mut u8, out_len: usize) -> isize {
    // SAFETY: the shim passes a live ring.
    let a = unsafe { &*a };
    let Some((seq, record)) = a.0.get(i) else { return -EINVAL };
    if out.is_null() || out_len == 0 {
        return -E2BIG;
    }
    // SAFETY: `out_len` writable bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(out, out_len) };
    let room = out_len - 1;
    let mut w = Buf { out: out.get_mut(..room).unwrap_or(&mut []), len: 0 };
    if writeln!(w, "{}", Line { seq, record }).is_err() {
        return -E2BIG;
    }
    let n = w.len;
    if let Some(nul) = out.get_mut(n) {
        *nul = 0;
    }
    n as isize
}

/// The per-uid limits and counts.
pub struct LxQuota(Quota<u32>);

/// A table for up to `capacity` uids counted at once, with `sessions` sessions at once and
/// `tokens_per_minute` tokens per minute each (0: no limit), or `ERR_PTR(-ENOMEM)`.
///
/// # Safety
/// `err` as in [`llamux_trust_key_ok`].
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_new(
    capacity: usize,
    sessions: u32,
    tokens_per_minute: u32,
    err: *mut u8,
    err_len: usize,
) -> *mut LxQuota {
    let oom = || {
        write_err(err, err_len, format_args!("out of memory for the quotas of {capacity} uids"));
        err_ptr(ENOMEM)
    };
    let Ok(q) = Quota::try_new(capacity, Limits { sessions, tokens_per_minute }) else { return oom() };
    match Box::try_new(LxQuota(q)) {
        Ok(b) => Box::into_raw(b),
        Err(_) => oom(),
    }
}

/// Frees a quota table.
///
/// # Safety
/// `q` came from [`llamux_quota_new`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_free(q: *mut LxQuota) {
    if !q.is_null() {
        // SAFETY: see above.
        drop(unsafe { Box::from_raw(q) });
    }
}

/// A session of `uid` opens at `now_ms` (a monotonic clock): 0, `-EBUSY` when it has as many
/// open as it may, `-EUSERS` when the table is full of other uids.
///
/// # Safety
/// `q` is live and used by nothing else during the call.
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_open(q: *mut LxQuota, uid: u32, now_ms: u64) -> isize {
    // SAFETY: the shim passes a live table, under its lock.
    match unsafe { &mut *q }.0.open(uid, now_ms) {
        Ok(()) => 0,
        Err(QuotaError::Full) => -EUSERS,
        Err(_) => -EBUSY,
    }
}

/// A session of `uid` (opened with [`llamux_quota_open`]) closes.
///
/// # Safety
/// As [`llamux_quota_open`].
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_close(q: *mut LxQuota, uid: u32, now_ms: u64) {
    // SAFETY: as above.
    unsafe { &mut *q }.0.close(uid, now_ms);
}

/// A request of `uid`: 0 when admitted, `-EDQUOT` when it has used its tokens for now (the
/// seconds until it is admitted again in `retry_after_s`).
///
/// # Safety
/// As [`llamux_quota_open`]; `retry_after_s` is writable.
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_admit(q: *mut LxQuota, uid: u32, now_ms: u64, retry_after_s: *mut u32) -> isize {
    // SAFETY: as above.
    match unsafe { &mut *q }.0.admit(uid, now_ms) {
        Ok(()) => 0,
        Err(e) => {
            if let (QuotaError::Tokens { retry_after_s: s, .. }, false) = (e, retry_after_s.is_null()) {
                // SAFETY: writable (checked non-null).
                unsafe { *retry_after_s = s };
            }
            -EDQUOT
        }
    }
}

/// Counts `tokens` (prompt and generated) used by a request of `uid`.
///
/// # Safety
/// As [`llamux_quota_open`].
#[no_mangle]
pub unsafe extern "C" fn llamux_quota_charge(q: *mut LxQuota, uid: u32, tokens: u32, now_ms: u64) {
    // SAFETY: as above.
    unsafe { &mut *q }.0.charge(uid, tokens, now_ms);
}
