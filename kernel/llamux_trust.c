// SPDX-License-Identifier: GPL-2.0
/*
 * llamux.ko's trust services, the C side of kernel/rust/src/trust.rs (llamux-trust, shared with
 * userspace):
 *
 * - Signed models: with the "pubkey" parameter set, the model file must carry a signature file
 *   ("signature", default the model's path and ".sig", as `llamux sign` writes it) that signs its
 *   SHA-256 with that key, or insmod fails with one line in the kernel log. The digest is taken
 *   here, through the kernel's crypto API in chunks with a scheduling point between them (so no
 *   long preempt-off stretch); the signature is checked by the Rust Ed25519 code.
 * - The audit ring: one record per request (time, uid, pid, comm, the prompt's SHA-256, tokens
 *   in and out, outcome), read as userspace's audit lines from /proc/llamux/audit (root only):
 *   the newest LX_AUDIT_RECORDS of the requests that ran and, in a ring of their own, the
 *   newest LX_AUDIT_REFUSALS refusals, at most LX_AUDIT_REFUSALS_PER_MIN a minute from each uid
 *   (the others are counted in audit_suppressed of /proc/llamux/stats). No one's refusals push
 *   out a request that ran.
 * - Per-uid quotas ("uid_sessions", "uid_tokens_per_min"; 0 is no limit): sessions open at once
 *   and tokens per minute, in a table of at most LX_QUOTA_UIDS uids counted at once.
 *
 * The Rust objects are used under this file's mutexes, each call in an FPU section.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kernel_read_file.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/mutex.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <crypto/hash.h>
#include <asm/fpu/api.h>
#include "llamux_trust.h"

static char *pubkey;
module_param(pubkey, charp, 0444);
MODULE_PARM_DESC(pubkey, "Trusted Ed25519 public key (64 hex digits): the model must be signed with it");
static char *signature;
module_param(signature, charp, 0444);
MODULE_PARM_DESC(signature, "Signature file of the model (default: the model's path and .sig)");
static unsigned int uid_sessions;
module_param(uid_sessions, uint, 0444);
MODULE_PARM_DESC(uid_sessions, "Prompt files each uid may have open at once (0: no limit); beyond, open fails with EBUSY");
static unsigned int uid_tokens_per_min;
module_param(uid_tokens_per_min, uint, 0444);
MODULE_PARM_DESC(uid_tokens_per_min,
		 "Tokens (prompt and generated) per minute each uid may use (0: no limit); beyond, writes fail with EDQUOT");

#define LX_HASH_CHUNK (256 * 1024)	/* bytes hashed between scheduling points */
#define LX_SIG_MAX 1024			/* llamux_trust::sign::MAX_SIGNATURE_FILE */
#define LX_AUDIT_RECORDS 256		/* requests that ran (llamux_trust::audit::RING_LEN) */
#define LX_AUDIT_REFUSALS 64		/* refusals */
#define LX_AUDIT_REFUSALS_PER_MIN 8	/* refusal records of each uid a minute */
#define LX_AUDIT_LINE 320		/* one line, at most about 260 bytes */
#define LX_QUOTA_UIDS 256		/* uids counted at once */

static DEFINE_MUTEX(lx_audit_lock);
static struct lx_audit *lx_audit_ring;
static DEFINE_MUTEX(lx_quota_lock);
static struct lx_quota *lx_quota_table;

int lx_sha256(const void *data, size_t len, u8 out[32])
{
	struct crypto_shash *tfm;
	size_t off = 0;
	int ret;

	tfm = crypto_alloc_shash("sha256", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	{
		SHASH_DESC_ON_STACK(desc, tfm);

		desc->tfm = tfm;
		ret = crypto_shash_init(desc);
		/* Accelerated implementations hash each update in one FPU section: keep them short. */
		while (!ret && off < len) {
			size_t n = min_t(size_t, len - off, LX_HASH_CHUNK);

			ret = crypto_shash_update(desc, (const u8 *)data + off, n);
			off += n;
			if (!ret && fatal_signal_pending(current))
				ret = -EINTR;
			cond_resched();
		}
		if (!ret)
			ret = crypto_shash_final(desc, out);
		shash_desc_zero(desc);
	}
	crypto_free_shash(tfm);
	return ret;
}

/* The model's signature file against the pubkey parameter: 0 or a negative errno, one line. */
static int lx_check_signature(const char *path, const u8 digest[32])
{
	char *own = NULL, err[256] = "";
	const char *sig_path = signature;
	void *sig = NULL;
	size_t size = 0;
	ssize_t n;
	long ret;

	if (!sig_path || !*sig_path) {
		own = kasprintf(GFP_KERNEL, "%s.sig", path);
		if (!own)
			return -ENOMEM;
		sig_path = own;
	}
	n = kernel_read_file_from_path(sig_path, 0, &sig, LX_SIG_MAX, &size, READING_FIRMWARE);
	if (n == -ENOENT) {
		pr_err("llamux: %s is not signed (no %s) and pubkey is set: refused\n", path, sig_path);
		ret = -ENOKEY;
	} else if (n == -EFBIG || n == -EINVAL) {
		pr_err("llamux: %s: %s is not a signature file (empty or longer than %d bytes): refused\n", path,
		       sig_path, LX_SIG_MAX);
		ret = -EBADMSG;
	} else if (n < 0) {
		pr_err("llamux: %s: cannot read its signature %s: error %zd\n", path, sig_path, n);
		ret = n;
	} else {
		kernel_fpu_begin();
		ret = LX_CALL(llamux_trust_verify, pubkey, digest, sig, n, err, sizeof(err));
		kernel_fpu_end();
		if (ret)
			pr_err("llamux: %s: signature %s refused: %s\n", path, sig_path, err);
		else
			pr_info("llamux: %s: signature verified (%s)\n", path, sig_path);
	}
	vfree(sig);
	kfree(own);
	return ret;
}

int lx_trust_check_model(const char *path, const void *data, size_t len, const char *sha256_hex)
{
	bool want_digest = sha256_hex && *sha256_hex, want_sig = pubkey && *pubkey;
	char err[256] = "", got[65];
	u8 digest[32];
	long ret;

	if (!want_digest && !want_sig)
		return 0;
	if (want_sig) {
		kernel_fpu_begin();
		ret = LX_CALL(llamux_trust_key_ok, pubkey, err, sizeof(err), 0, 0, 0);
		kernel_fpu_end();
		if (ret) {
			pr_err("llamux: pubkey=%s refused: %s\n", pubkey, err);
			return ret;
		}
	}
	ret = lx_sha256(data, len, digest);
	if (ret) {
		pr_err("llamux: %s: cannot take its SHA-256: error %ld\n", path, ret);
		return ret;
	}
	bin2hex(got, digest, sizeof(digest));
	got[64] = 0;
	if (want_digest && (strlen(sha256_hex) != 64 || strncasecmp(got, sha256_hex, 64) != 0)) {
		pr_err("llamux: %s: sha256 %s does not match the expected %s\n", path, got, sha256_hex);
		return -EBADMSG;
	}
	return want_sig ? lx_check_signature(path, digest) : 0;
}

static u64 lx_now_ms(void)
{
	return div_u64(ktime_get_ns(), NSEC_PER_MSEC);
}

/* ---- the audit ring ---- */

void lx_audit_asker(struct lx_audit_rec *r, u32 uid)
{
	char comm[TASK_COMM_LEN];

	r->uid = uid;
	r->pid = task_tgid_nr(current);
	get_task_comm(comm, current);
	memset(r->comm, 0, sizeof(r->comm));
	memcpy(r->comm, comm, strnlen(comm, min(sizeof(comm), sizeof(r->comm))));
}

void lx_audit(struct lx_audit_rec *r)
{
	u64 seq;

	r->time = ktime_get_real_seconds();
	if (!lx_audit_ring)
		return;
	mutex_lock(&lx_audit_lock);
	kernel_fpu_begin();
	seq = LX_CALL(llamux_audit_push, lx_audit_ring, r, lx_now_ms(), 0, 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_audit_lock);
	if (seq == 0)
		pr_info_ratelimited("llamux: uid %u: over %d refusals this minute, not audited (audit_suppressed counts them)\n",
				    r->uid, LX_AUDIT_REFUSALS_PER_MIN);
}

u64 lx_audit_suppressed(void)
{
	u64 n;

	if (!lx_audit_ring)
		return 0;
	mutex_lock(&lx_audit_lock);
	kernel_fpu_begin();
	n = LX_CALL(llamux_audit_suppressed, lx_audit_ring, 0, 0, 0, 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_audit_lock);
	return n;
}

static int lx_audit_show(struct seq_file *m, void *v)
{
	char line[LX_AUDIT_LINE];
	size_t i, n;
	long len;

	mutex_lock(&lx_audit_lock);
	kernel_fpu_begin();
	n = LX_CALL(llamux_audit_len, lx_audit_ring, 0, 0, 0, 0, 0);
	kernel_fpu_end();
	for (i = 0; i < n; i++) {
		kernel_fpu_begin();
		len = LX_CALL(llamux_audit_line, lx_audit_ring, i, line, sizeof(line), 0, 0);
		kernel_fpu_end();
		if (len > 0)
			seq_write(m, line, len);
	}
	mutex_unlock(&lx_audit_lock);
	return 0;
}

static int lx_audit_open(struct inode *inode, struct file *file)
{
	return single_open_size(file, lx_audit_show, NULL, (LX_AUDIT_RECORDS + LX_AUDIT_REFUSALS) * LX_AUDIT_LINE);
}

static const struct proc_ops lx_audit_ops = {
	.proc_open = lx_audit_open, .proc_read = seq_read, .proc_lseek = seq_lseek, .proc_release = single_release,
};

/* ---- per-uid quotas ---- */

bool lx_quota_on(void)
{
	return uid_sessions || uid_tokens_per_min;
}

int lx_quota_open(u32 uid)
{
	long ret;

	if (!lx_quota_table)
		return 0;
	mutex_lock(&lx_quota_lock);
	kernel_fpu_begin();
	ret = LX_CALL(llamux_quota_open, lx_quota_table, uid, lx_now_ms(), 0, 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_quota_lock);
	return ret;
}

void lx_quota_close(u32 uid)
{
	if (!lx_quota_table)
		return;
	mutex_lock(&lx_quota_lock);
	kernel_fpu_begin();
	LX_CALL(llamux_quota_close, lx_quota_table, uid, lx_now_ms(), 0, 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_quota_lock);
}

int lx_quota_admit(u32 uid)
{
	u32 retry = 0;
	long ret;

	if (!lx_quota_table)
		return 0;
	mutex_lock(&lx_quota_lock);
	kernel_fpu_begin();
	ret = LX_CALL(llamux_quota_admit, lx_quota_table, uid, lx_now_ms(), &retry, 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_quota_lock);
	return ret;
}

void lx_quota_charge(u32 uid, u32 tokens)
{
	if (!lx_quota_table)
		return;
	mutex_lock(&lx_quota_lock);
	kernel_fpu_begin();
	LX_CALL(llamux_quota_charge, lx_quota_table, uid, tokens, lx_now_ms(), 0, 0);
	kernel_fpu_end();
	mutex_unlock(&lx_quota_lock);
}

/* ---- start and stop ---- */

void lx_trust_stop(void)
{
	kernel_fpu_begin();
	if (lx_audit_ring)
		LX_CALL(llamux_audit_free, lx_audit_ring, 0, 0, 0, 0, 0);
	if (lx_quota_table)
		LX_CALL(llamux_quota_free, lx_quota_table, 0, 0, 0, 0, 0);
	kernel_fpu_end();
	lx_audit_ring = NULL;
	lx_quota_table = NULL;
}

int lx_trust_start(void)
{
	struct lx_audit *ring;
	struct lx_quota *quota = NULL;
	char err[160] = "";

	kernel_fpu_begin();
	ring = (struct lx_audit *)LX_CALL(llamux_audit_new, LX_AUDIT_RECORDS, LX_AUDIT_REFUSALS, LX_QUOTA_UIDS,
					  LX_AUDIT_REFUSALS_PER_MIN, err, sizeof(err));
	if (!IS_ERR_OR_NULL(ring) && lx_quota_on())
		quota = (struct lx_quota *)LX_CALL(llamux_quota_new, LX_QUOTA_UIDS, uid_sessions, uid_tokens_per_min,
						   err, sizeof(err), 0);
	kernel_fpu_end();
	if (IS_ERR_OR_NULL(ring) || IS_ERR(quota)) {
		pr_err("llamux: %s\n", err);
		if (!IS_ERR_OR_NULL(ring))
			lx_audit_ring = ring;
		lx_trust_stop();
		return -ENOMEM;
	}
	lx_audit_ring = ring;
	lx_quota_table = quota;
	return 0;
}

bool lx_trust_proc(struct proc_dir_entry *dir)
{
	return proc_create("audit", 0400, dir, &lx_audit_ops) != NULL;
}
