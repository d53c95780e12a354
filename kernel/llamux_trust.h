/* SPDX-License-Identifier: GPL-2.0 */
/* The module's trust services (llamux_trust.c) for the rest of the shim: the model's digest
 * and signature at load, the audit ring (/proc/llamux/audit), per-uid quotas. */
#ifndef LLAMUX_TRUST_H
#define LLAMUX_TRUST_H

#include <linux/types.h>
#include <linux/proc_fs.h>
#include "llamux.h"

/* SHA-256 of data[..len], hashed in chunks with a scheduling point between them. */
int lx_sha256(const void *data, size_t len, u8 out[32]);
/*
 * Checks the model file @path held in data[..len] before it is parsed: its SHA-256 against the
 * sha256 parameter (when given), and its signature against the pubkey parameter (when given).
 * 0, or a negative errno after one line in the kernel log.
 */
int lx_trust_check_model(const char *path, const void *data, size_t len, const char *sha256_hex);

/* The audit ring and the quota table; then /proc/llamux/audit in @dir. */
int lx_trust_start(void);
bool lx_trust_proc(struct proc_dir_entry *dir);
void lx_trust_stop(void);

/* Fills the asker's uid, pid and command name from the current task. */
void lx_audit_asker(struct lx_audit_rec *r, u32 uid);
/* Adds @r (its time set now) to the ring; a refusal over its uid's limit a minute is only counted. */
void lx_audit(struct lx_audit_rec *r);
/* Refusals not audited, over their uid's limit. */
u64 lx_audit_suppressed(void);

/* True when a per-uid limit is set (uid_sessions, uid_tokens_per_min); else nothing is counted. */
bool lx_quota_on(void);
/* A session of @uid opens: 0, -EBUSY (as many open as it may), -EUSERS (the table is full). */
int lx_quota_open(u32 uid);
void lx_quota_close(u32 uid);
/* A request of @uid: 0, or -EDQUOT when it has used its tokens for this minute. */
int lx_quota_admit(u32 uid);
/* Counts @tokens (prompt and generated) used by a request of @uid. */
void lx_quota_charge(u32 uid, u32 tokens);

#endif
