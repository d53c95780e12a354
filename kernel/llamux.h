/* SPDX-License-Identifier: GPL-2.0 */
/* The C ABI of the Rust engine (kernel/rust/src/lib.rs). Every call must be made between
 * kernel_fpu_begin() and kernel_fpu_end(). */
#ifndef LLAMUX_H
#define LLAMUX_H

#include <linux/types.h>
#include <linux/list.h>

struct lx_engine;
struct lx_session;
struct lx_batch;

struct lx_config {
	u32 n_ctx;
	u32 max_tokens;
	u32 temp_milli;
	u32 top_k;
	u32 top_p_milli;
	u64 seed;
};

/*
 * Constructors return a live object or ERR_PTR(-EINVAL) (refused input) / ERR_PTR(-ENOMEM)
 * (memory ran out), with a message in err: test with IS_ERR, read with PTR_ERR.
 */
struct lx_engine *llamux_engine_new(const u8 *data, size_t len, char *err, size_t err_len);
void llamux_engine_free(struct lx_engine *e);
void llamux_engine_info(const struct lx_engine *e, u32 *n_vocab, u32 *n_ctx_train, u32 *n_layer);
/* Bytes of the KV cache of a session of n_ctx positions. */
long llamux_engine_kv_bytes(const struct lx_engine *e, u32 n_ctx);
/* The most bytes of text one decoding step can give a session (its slot's out_len must hold them). */
long llamux_engine_max_piece(const struct lx_engine *e);
/* One user message in the model's chat format, NUL-terminated in out: its length, 0 when the
 * model has no known chat format, -E2BIG when out is too small, -EINVAL for text not UTF-8. */
long llamux_engine_chat(const struct lx_engine *e, const u8 *user, size_t len, char *out, size_t out_len);
struct lx_session *llamux_session_new(const struct lx_engine *e, const struct lx_config *cfg,
				      const u8 *prompt, size_t len, char *err, size_t err_len);
int llamux_session_prompt(const struct lx_engine *e, struct lx_session *s, u32 *fed);
void llamux_session_free(struct lx_session *s);

/* One session of a decoding step (llamux_decode_step), as the Rust LxSlot. */
struct lx_slot {
	struct lx_session *session;	/* in: a session that has fed its prompt */
	u8 *out;			/* in: room for the text of the step's token */
	u32 out_len;			/* in */
	u32 len;			/* out: bytes written to out */
	u32 generated;			/* out: tokens generated so far */
	s32 status;			/* out: 0 goes on, 1 ended, -1 internal error */
};

struct lx_batch *llamux_batch_new(const struct lx_engine *e, size_t max_sessions, size_t n_ctx, char *err,
				  size_t err_len);
void llamux_batch_free(struct lx_batch *b);
int llamux_decode_step(const struct lx_engine *e, struct lx_batch *b, struct lx_slot *slots, size_t n);

/* Trust services (kernel/rust/src/trust.rs, llamux-trust's): model signatures, the audit ring,
 * per-uid quotas. The shim keeps the locks. */
struct lx_audit;
struct lx_quota;

/* One request's audit record, as the Rust LxAuditRecord. */
struct lx_audit_rec {
	u64 time;			/* seconds since the epoch when it ended */
	u32 uid;			/* effective uid of the asker, initial user namespace */
	u32 pid;			/* its pid, initial pid namespace */
	u8 comm[16];			/* its command name, NUL-padded */
	u8 prompt_sha256[32];		/* of the prompt as written */
	u32 tokens_in;			/* prompt tokens fed */
	u32 tokens_out;			/* tokens generated */
	u32 outcome;			/* enum lx_outcome */
};

/* llamux_trust::audit::Outcome. */
enum lx_outcome {
	LX_COMPLETED = 0,
	LX_CANCELLED = 1,
	LX_TIMED_OUT = 2,
	LX_FAILED = 3,
	LX_REFUSED = 4,
	LX_TOO_MANY_SESSIONS = 5,
	LX_OVER_TOKEN_QUOTA = 6,
};

/* Whether pubkey (NUL-terminated hex) is an Ed25519 public key: 0, or -EINVAL with the reason in err. */
long llamux_trust_key_ok(const char *pubkey, char *err, size_t err_len);
/* 0 when sig signs a file of SHA-256 sha256 with pubkey; -EINVAL (not a key), -EBADMSG
 * (malformed, or another file's: tampered), -EKEYREJECTED (another key, a bad signature). */
long llamux_trust_verify(const char *pubkey, const u8 *sha256, const u8 *sig, size_t sig_len, char *err,
			 size_t err_len);
/* The newest @served records of requests that ran and @refused refusals, in rings of their own;
 * at most @per_minute refusals of each uid recorded a minute (for up to @uids uids at once). */
struct lx_audit *llamux_audit_new(size_t served, size_t refused, size_t uids, u32 per_minute, char *err,
				  size_t err_len);
void llamux_audit_free(struct lx_audit *a);
/* Its sequence number, or 0: a refusal over its uid's limit, counted in llamux_audit_suppressed. */
u64 llamux_audit_push(struct lx_audit *a, const struct lx_audit_rec *r, u64 now_ms);
u64 llamux_audit_suppressed(const struct lx_audit *a);
size_t llamux_audit_len(const struct lx_audit *a);
/* The i-th record (oldest first, across both rings) as one line and a newline, NUL-terminated: its length,
 * -EINVAL past the end, -E2BIG when it does not fit. */
long llamux_audit_line(const struct lx_audit *a, size_t i, char *out, size_t out_len);
struct lx_quota *llamux_quota_new(size_t capacity, u32 sessions, u32 tokens_per_minute, char *err, size_t err_len);
void llamux_quota_free(struct lx_quota *q);
/* 0, -EBUSY (the uid's sessions are all open), -EUSERS (the table is full of other uids). */
long llamux_quota_open(struct lx_quota *q, u32 uid, u64 now_ms);
void llamux_quota_close(struct lx_quota *q, u32 uid, u64 now_ms);
/* 0, or -EDQUOT (tokens for this minute used; retry_after_s set). */
long llamux_quota_admit(struct lx_quota *q, u32 uid, u64 now_ms, u32 *retry_after_s);
void llamux_quota_charge(struct lx_quota *q, u32 uid, u32 tokens, u64 now_ms);

/*
 * Every call into Rust goes through LX_CALL: lx_call() (llamux_main.c) refuses it once the engine
 * has panicked (-ENOTRECOVERABLE), else calls fn(a1..a6) through llamux_call (llamux_call.S) on
 * a 16-byte aligned stack (the kernel's is only 8-byte aligned), with a guard from which a panic
 * returns early (llamux_escape). A function whose call was refused or escaped returns
 * -ENOTRECOVERABLE (ERR_PTR(-ENOTRECOVERABLE) for the constructors).
 */
struct lx_guard {
	u64 regs[8];			/* rbx rbp r12-r15, the caller's stack pointer, return address */
	struct lx_guard *prev;		/* the call this one is nested in, on this thread */
	const void *fn;
	long a[6];
	struct list_head *scope;	/* lx_call_scoped: the blocks allocated under this call */
	bool oom;			/* an allocation under this call failed */
};
long llamux_call(struct lx_guard *g);
void __noreturn llamux_escape(struct lx_guard *g, long ret);
long lx_call(const void *fn, long a1, long a2, long a3, long a4, long a5, long a6);
#define LX_CALL(fn, a1, a2, a3, a4, a5, a6) \
	lx_call((const void *)(fn), (long)(a1), (long)(a2), (long)(a3), (long)(a4), (long)(a5), (long)(a6))

/* Provided by the shim for the engine. */
void *llamux_shim_alloc(size_t size);
void llamux_shim_free(void *ptr);
void __noreturn llamux_shim_panic(const u8 *msg, size_t len);
size_t llamux_shim_threads(void);
/* Debug builds: whether to panic at a fault-injection site (always false in release builds). */
bool llamux_shim_fault(u32 site);
void llamux_shim_parallel(const void *ctx, size_t n_chunks, void (*chunk)(const void *ctx, size_t i));
/* A scheduling point between bounded pieces of long work that is no parallel operation. */
void llamux_shim_yield(void);

#endif
