// SPDX-License-Identifier: GPL-2.0
/*
 * llamux.ko: a language model inside the kernel.
 *
 * The model file is read at load time (module parameter "model") into vmalloc'd memory and
 * parsed in place by the Rust engine. /proc/llamux/prompt: each open file is a session; write a
 * prompt, then read the response from the same file descriptor, which streams as tokens are
 * generated (reads block until data is available and are interrupted by signals). Closing a
 * file that has been read from cancels its generation. A file closed without being read from
 * (`echo "…" > /proc/llamux/prompt`) leaves its generation running for /proc/llamux/response,
 * which streams the newest such answer. Generation runs on a kernel thread per session, one
 * token per FPU section, yielding in between; matrix products are shared with a pool of kernel
 * threads, one per CPU.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/fs.h>
#include <linux/kernel_read_file.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/kthread.h>
#include <linux/wait.h>
#include <linux/mutex.h>
#include <linux/kfifo.h>
#include <linux/atomic.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <crypto/hash.h>
#include <asm/fpu/api.h>
#include "llamux.h"

#define LX_MAX_PROMPT (64 * 1024)
#define LX_FIFO_SIZE 4096

static char *model = "/lib/firmware/llamux/model.gguf";
module_param(model, charp, 0444);
MODULE_PARM_DESC(model, "Path of the GGUF model to load");
static char *sha256;
module_param(sha256, charp, 0444);
MODULE_PARM_DESC(sha256, "Expected SHA-256 of the model file (hex); checked when given");
static unsigned int threads;
module_param(threads, uint, 0444);
MODULE_PARM_DESC(threads, "Threads per matrix product (default: online CPUs)");
static unsigned int max_sessions = 32;
module_param(max_sessions, uint, 0444);
MODULE_PARM_DESC(max_sessions, "Sessions open at once");

/* Runtime configuration (/proc/llamux/config). Integers only: no floating point in C. */
static DEFINE_MUTEX(lx_config_lock);
static struct lx_config lx_cfg = {
	.n_ctx = 512, .max_tokens = 128, .temp_milli = 0, .top_k = 40, .top_p_milli = 950, .seed = 0,
};
static unsigned int lx_timeout_s = 30;

static void *lx_model_data;
static size_t lx_model_size;
static struct lx_engine *lx_engine;
static u32 lx_n_vocab, lx_n_ctx_train, lx_n_layer;
static struct proc_dir_entry *lx_dir;

static atomic_t lx_live = ATOMIC_INIT(0);
static atomic64_t lx_requests = ATOMIC64_INIT(0);
static atomic64_t lx_tokens = ATOMIC64_INIT(0);
static atomic64_t lx_gen_ns = ATOMIC64_INIT(0);	/* decoding time (after the prompt) */
static atomic64_t lx_first_token_ns_sum = ATOMIC64_INIT(0);
static atomic64_t lx_first_token_count = ATOMIC64_INIT(0);
static atomic64_t lx_alloc_bytes = ATOMIC64_INIT(0);

/* ---- services for the engine ---- */

/*
 * The engine is only ever entered inside kernel_fpu_begin()/kernel_fpu_end(), where preemption
 * is off and sleeping is forbidden. Allocation may sleep, so it leaves the FPU section for its
 * duration: this is a function call, across which the x86-64 ABI keeps no vector register
 * live, and kernel_fpu_begin() resets MXCSR to the default the engine expects. It is also a
 * scheduling point for long setup work (loading a model, starting a session).
 */
void *llamux_shim_alloc(size_t size)
{
	size_t *p;

	kernel_fpu_end();
	cond_resched();
	/* A size header keeps the accounting for /proc/llamux/stats. */
	p = kvmalloc(size + sizeof(size_t), GFP_KERNEL);
	kernel_fpu_begin();
	if (!p)
		return NULL;
	*p = size;
	atomic64_add(size, &lx_alloc_bytes);
	return p + 1;
}

void llamux_shim_free(void *ptr)
{
	size_t *p;

	if (!ptr)
		return;
	p = (size_t *)ptr - 1;
	atomic64_sub(*p, &lx_alloc_bytes);
	kernel_fpu_end();
	kvfree(p);
	kernel_fpu_begin();
}

void llamux_shim_panic(const u8 *msg, size_t len)
{
	pr_emerg("llamux: engine panic: %.*s\n", (int)len, msg);
	BUG();
}

/*
 * ---- worker threads for the engine's Parallel ----
 *
 * The engine splits each operation (the fused matrix-vector products of a layer, the attention
 * heads) into tasks and hands them to llamux_shim_parallel(), called from Rust inside an FPU section. The chunks are claimed by the
 * caller and by the pool's kernel threads (one per other CPU), each in its own FPU section. The
 * caller then leaves its FPU section to sleep until the workers are done (a function call, as
 * for allocation). One product uses the pool at a time; concurrent sessions that find it busy
 * run their chunks themselves.
 */
#define LX_MAX_WORKERS 63

static struct {
	int n;
	struct task_struct *task[LX_MAX_WORKERS];
	atomic_t busy;
	const void *ctx;
	void (*fn)(const void *ctx, size_t i);
	size_t n_chunks;
	atomic_long_t next;
	atomic_t pending;	/* workers still on the current job */
	unsigned long job;	/* sequence number of the current job */
	wait_queue_head_t start, done;
} lx_pool;

static void lx_pool_drain(void)
{
	long i;

	while ((i = atomic_long_fetch_add(1, &lx_pool.next)) < (long)lx_pool.n_chunks)
		LX_CALL(lx_pool.fn, lx_pool.ctx, i, 0, 0, 0, 0);
}

/*
 * Between the operations of a token the pool spins (outside any FPU section, so preemptible) for
 * a short while before it sleeps: operations follow each other within microseconds, and a wake-up
 * through the wait queue costs more than that. As in the userspace pool.
 */
#define LX_SPIN_NS (1000 * NSEC_PER_USEC)

/* Spins until a job other than @seen is published; false when it gave up (time, resched, stop). */
static bool lx_pool_spin_for_job(unsigned long seen)
{
	u64 end = ktime_get_ns() + LX_SPIN_NS;

	while (READ_ONCE(lx_pool.job) == seen) {
		if (kthread_should_stop() || need_resched() || ktime_get_ns() > end)
			return false;
		cpu_relax();
	}
	return true;
}

static int lx_pool_worker(void *arg)
{
	unsigned long seen = 0;

	while (!kthread_should_stop()) {
		wait_event_interruptible(lx_pool.start, kthread_should_stop() || READ_ONCE(lx_pool.job) != seen);
		if (kthread_should_stop())
			break;
		/*
		 * One FPU section for a run of jobs that follow each other closely (a token's
		 * operations): saving and restoring the vector state per job costs more than the
		 * short jobs of a small model. The section ends at the first gap longer than the
		 * spin, or as soon as the scheduler wants the CPU.
		 */
		kernel_fpu_begin();
		do {
			seen = READ_ONCE(lx_pool.job);
			smp_rmb();	/* the job's fields were published before its number */
			lx_pool_drain();
			if (atomic_dec_and_test(&lx_pool.pending))
				wake_up(&lx_pool.done);
		} while (lx_pool_spin_for_job(seen));
		kernel_fpu_end();
	}
	return 0;
}

size_t llamux_shim_threads(void)
{
	return lx_pool.n + 1;
}

void llamux_shim_parallel(const void *ctx, size_t n_chunks, void (*fn)(const void *ctx, size_t i))
{
	size_t i;
	u64 spin_end;

	if (lx_pool.n == 0 || n_chunks < 2 || atomic_cmpxchg(&lx_pool.busy, 0, 1) != 0) {
		for (i = 0; i < n_chunks; i++)
			LX_CALL(fn, ctx, i, 0, 0, 0, 0);
		return;
	}
	lx_pool.ctx = ctx;
	lx_pool.fn = fn;
	lx_pool.n_chunks = n_chunks;
	atomic_long_set(&lx_pool.next, 0);
	atomic_set(&lx_pool.pending, lx_pool.n);
	smp_wmb();
	WRITE_ONCE(lx_pool.job, lx_pool.job + 1);
	if (wq_has_sleeper(&lx_pool.start))
		wake_up_all(&lx_pool.start);
	lx_pool_drain();
	/* Spin (still in the FPU section) for the workers, then sleep outside it. */
	spin_end = ktime_get_ns() + LX_SPIN_NS;
	while (atomic_read(&lx_pool.pending) != 0 && !need_resched() && ktime_get_ns() < spin_end)
		cpu_relax();
	if (atomic_read(&lx_pool.pending) != 0) {
		kernel_fpu_end();
		wait_event(lx_pool.done, atomic_read(&lx_pool.pending) == 0);
		kernel_fpu_begin();
	}
	atomic_set(&lx_pool.busy, 0);
}

static void lx_pool_stop(void)
{
	int i;

	for (i = 0; i < lx_pool.n; i++)
		kthread_stop(lx_pool.task[i]);
	lx_pool.n = 0;
}

static int lx_pool_start(void)
{
	int want = threads ? (int)threads - 1 : (int)num_online_cpus() - 1;

	init_waitqueue_head(&lx_pool.start);
	init_waitqueue_head(&lx_pool.done);
	want = clamp(want, 0, LX_MAX_WORKERS);
	for (lx_pool.n = 0; lx_pool.n < want; lx_pool.n++) {
		struct task_struct *t = kthread_run(lx_pool_worker, NULL, "llamux-worker/%d", lx_pool.n);

		if (IS_ERR(t)) {
			lx_pool_stop();
			return PTR_ERR(t);
		}
		lx_pool.task[lx_pool.n] = t;
	}
	return 0;
}

/* ---- model loading ---- */

static int lx_check_digest(const void *data, size_t len, const char *hex)
{
	struct crypto_shash *tfm;
	u8 digest[32];
	char got[65];
	int i, ret;

	tfm = crypto_alloc_shash("sha256", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	{
		SHASH_DESC_ON_STACK(desc, tfm);

		desc->tfm = tfm;
		ret = crypto_shash_digest(desc, data, len, digest);
	}
	crypto_free_shash(tfm);
	if (ret)
		return ret;
	for (i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", digest[i]);
	if (strncasecmp(got, hex, 64) != 0 || strlen(hex) != 64) {
		pr_err("llamux: %s: sha256 %s does not match the expected %s\n", model, got, hex);
		return -EBADMSG;
	}
	return 0;
}

/* ---- sessions ---- */

struct lx_file {
	struct mutex lock;		/* serializes write/read/release */
	struct lx_session *session;
	struct task_struct *worker;
	DECLARE_KFIFO(out, u8, LX_FIFO_SIZE);
	wait_queue_head_t readable;	/* output appended or generation ended */
	wait_queue_head_t writable;	/* the reader consumed output */
	bool started;
	bool was_read;
	bool done;
	int error;
	ktime_t t_start;
	char err[128];
};

static int lx_worker(void *arg)
{
	struct lx_file *f = arg;
	u8 piece[256];
	bool first = true;
	unsigned long deadline = jiffies + (unsigned long)lx_timeout_s * HZ;
	ktime_t t_step, t_gen = 0;
	u32 gen, generated = 0;
	int n;

	while (!kthread_should_stop()) {
		if (time_after(jiffies, deadline)) {
			f->error = -ETIMEDOUT;
			break;
		}
		t_step = ktime_get();
		kernel_fpu_begin();
		n = (int)LX_CALL(llamux_session_step, lx_engine, f->session, piece, sizeof(piece), 0, 0);
		kernel_fpu_end();
		if (n < 0) {
			if (n != -1)
				f->error = -EIO;
			break;
		}
		/* Count tokens, not bytes: a token's piece may be empty (part of a UTF-8 sequence). */
		gen = (u32)LX_CALL(llamux_session_generated, f->session, 0, 0, 0, 0, 0);
		if (gen != generated) {
			generated = gen;
			if (first) {
				t_gen = t_step;	/* decoding starts with this step */
				atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), f->t_start)), &lx_first_token_ns_sum);
				atomic64_inc(&lx_first_token_count);
				first = false;
			}
			atomic64_inc(&lx_tokens);
		}
		if (n > 0) {
			/* Wait for room; the reader may be slow. */
			wait_event_interruptible(f->writable, kthread_should_stop() || kfifo_avail(&f->out) >= n);
			if (kthread_should_stop())
				break;
			kfifo_in(&f->out, piece, n);
			wake_up_interruptible(&f->readable);
		}
		cond_resched();
	}
	if (!first)
		atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), t_gen)), &lx_gen_ns);
	WRITE_ONCE(f->done, true);
	wake_up_interruptible(&f->readable);
	/* Stay until kthread_stop() so that release() can always stop us. */
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			break;
		}
		schedule();
	}
	return 0;
}

static int lx_prompt_open(struct inode *inode, struct file *file)
{
	struct lx_file *f;

	if (atomic_inc_return(&lx_live) > max_sessions) {
		atomic_dec(&lx_live);
		return -EBUSY;
	}
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		atomic_dec(&lx_live);
		return -ENOMEM;
	}
	mutex_init(&f->lock);
	INIT_KFIFO(f->out);
	init_waitqueue_head(&f->readable);
	init_waitqueue_head(&f->writable);
	file->private_data = f;
	return 0;
}

static ssize_t lx_prompt_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct lx_file *f = file->private_data;
	struct lx_config cfg;
	char *text;
	ssize_t ret = len;

	if (len == 0)
		return 0;
	if (len > LX_MAX_PROMPT)
		return -E2BIG;
	text = memdup_user(buf, len);
	if (IS_ERR(text))
		return PTR_ERR(text);
	/* A trailing newline from `echo` is not part of the prompt. */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	mutex_lock(&f->lock);
	if (f->started) {
		ret = -EBUSY;	/* one prompt per open file */
		goto out;
	}
	mutex_lock(&lx_config_lock);
	cfg = lx_cfg;
	mutex_unlock(&lx_config_lock);
	kernel_fpu_begin();
	f->session = (struct lx_session *)LX_CALL(llamux_session_new, lx_engine, &cfg, text, len, f->err, sizeof(f->err));
	kernel_fpu_end();
	if (!f->session) {
		pr_info("llamux: prompt refused: %s\n", f->err);
		ret = -EINVAL;
		goto out;
	}
	f->started = true;
	f->t_start = ktime_get();
	atomic64_inc(&lx_requests);
	f->worker = kthread_run(lx_worker, f, "llamux-gen");
	if (IS_ERR(f->worker)) {
		ret = PTR_ERR(f->worker);
		f->worker = NULL;
		f->done = true;
	}
out:
	mutex_unlock(&f->lock);
	kfree(text);
	return ret;
}

static ssize_t lx_prompt_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	struct lx_file *f = file->private_data;
	unsigned int copied = 0;
	int ret;

	if (!f->started)
		return -EINVAL;
	f->was_read = true;
	ret = wait_event_interruptible(f->readable, !kfifo_is_empty(&f->out) || READ_ONCE(f->done));
	if (ret)
		return ret;	/* -ERESTARTSYS: interrupted by a signal */
	mutex_lock(&f->lock);
	ret = kfifo_to_user(&f->out, buf, len, &copied);
	mutex_unlock(&f->lock);
	wake_up_interruptible(&f->writable);
	if (ret)
		return ret;
	if (copied == 0 && f->error)
		return f->error;
	return copied;
}

/* Stops a session's generation and frees it. */
static void lx_file_free(struct lx_file *f)
{
	if (f->worker) {
		wake_up_interruptible(&f->writable);
		kthread_stop(f->worker);
	}
	if (f->session) {
		kernel_fpu_begin();
		LX_CALL(llamux_session_free, f->session, 0, 0, 0, 0, 0);
		kernel_fpu_end();
	}
	kfree(f);
	atomic_dec(&lx_live);
}

/* The newest answer whose prompt file was closed unread, for /proc/llamux/response. */
static DEFINE_MUTEX(lx_detached_lock);
static struct lx_file *lx_detached;

static int lx_prompt_release(struct inode *inode, struct file *file)
{
	struct lx_file *f = file->private_data, *old = NULL;

	if (f->started && !f->was_read) {
		mutex_lock(&lx_detached_lock);
		old = lx_detached;
		lx_detached = f;
		mutex_unlock(&lx_detached_lock);
		if (old)
			lx_file_free(old);	/* an older unread answer is dropped */
		return 0;
	}
	lx_file_free(f);
	return 0;
}

static int lx_response_open(struct inode *inode, struct file *file)
{
	mutex_lock(&lx_detached_lock);
	file->private_data = lx_detached;
	lx_detached = NULL;
	mutex_unlock(&lx_detached_lock);
	return file->private_data ? 0 : -ENODATA;
}

static int lx_response_release(struct inode *inode, struct file *file)
{
	lx_file_free(file->private_data);
	return 0;
}

static const struct proc_ops lx_response_ops = {
	.proc_open = lx_response_open,
	.proc_read = lx_prompt_read,
	.proc_release = lx_response_release,
	.proc_lseek = noop_llseek,
};

static const struct proc_ops lx_prompt_ops = {
	.proc_open = lx_prompt_open,
	.proc_read = lx_prompt_read,
	.proc_write = lx_prompt_write,
	.proc_release = lx_prompt_release,
	.proc_lseek = noop_llseek,
};

/* ---- status, stats, config ---- */

static int lx_status_show(struct seq_file *m, void *v)
{
	seq_printf(m, "model: %s\nbytes: %zu\nvocab: %u\nlayers: %u\ncontext_train: %u\nsessions: %d/%u\nthreads: %d\n",
		   model, lx_model_size, lx_n_vocab, lx_n_layer, lx_n_ctx_train, atomic_read(&lx_live), max_sessions,
		   lx_pool.n + 1);
	return 0;
}

static int lx_stats_show(struct seq_file *m, void *v)
{
	s64 tokens = atomic64_read(&lx_tokens), ns = atomic64_read(&lx_gen_ns);
	s64 ft = atomic64_read(&lx_first_token_count);
	s64 milli_tps = ns > 0 ? div64_s64(tokens * 1000LL * NSEC_PER_SEC, ns) : 0;

	seq_printf(m, "requests: %lld\ntokens: %lld\ndecode_us: %lld\ntokens_per_s: %lld.%03lld\n",
		   atomic64_read(&lx_requests), tokens, div64_s64(ns, NSEC_PER_USEC), milli_tps / 1000,
		   milli_tps % 1000);
	seq_printf(m, "first_token_ms: %lld\nlive_sessions: %d\nengine_bytes: %lld\nmodel_bytes: %zu\n",
		   ft ? div64_s64(atomic64_read(&lx_first_token_ns_sum), ft * NSEC_PER_MSEC) : 0,
		   atomic_read(&lx_live), atomic64_read(&lx_alloc_bytes), lx_model_size);
	return 0;
}

static int lx_config_show(struct seq_file *m, void *v)
{
	mutex_lock(&lx_config_lock);
	seq_printf(m, "n_ctx=%u\nmax_tokens=%u\ntemp=%u.%03u\ntop_k=%u\ntop_p=%u.%03u\nseed=%llu\ntimeout=%u\n",
		   lx_cfg.n_ctx, lx_cfg.max_tokens, lx_cfg.temp_milli / 1000, lx_cfg.temp_milli % 1000,
		   lx_cfg.top_k, lx_cfg.top_p_milli / 1000, lx_cfg.top_p_milli % 1000, lx_cfg.seed, lx_timeout_s);
	mutex_unlock(&lx_config_lock);
	return 0;
}

/* "1.25" -> 1250 (three decimals at most), without floating point. */
static int lx_parse_milli(const char *s, u32 *out)
{
	unsigned int whole = 0, frac = 0, digits = 0;
	const char *dot = strchr(s, '.');
	char buf[16];

	if (dot) {
		size_t n = dot - s;

		if (n == 0 || n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, n);
		buf[n] = 0;
		if (kstrtouint(buf, 10, &whole))
			return -EINVAL;
		for (s = dot + 1; *s; s++, digits++) {
			if (*s < '0' || *s > '9' || digits >= 3)
				return -EINVAL;
			frac = frac * 10 + (*s - '0');
		}
		if (digits == 0)
			return -EINVAL;
		while (digits++ < 3)
			frac *= 10;
	} else if (kstrtouint(s, 10, &whole)) {
		return -EINVAL;
	}
	if (whole > 1000)
		return -EINVAL;
	*out = whole * 1000 + frac;
	return 0;
}

static ssize_t lx_config_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	struct lx_config next;
	unsigned int timeout;
	char *buf, *line, *cur;
	int ret = 0;

	if (len == 0 || len > 1024)
		return -EINVAL;
	buf = memdup_user_nul(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	mutex_lock(&lx_config_lock);
	next = lx_cfg;
	timeout = lx_timeout_s;
	cur = buf;
	/* Every "key=value" (space or newline separated) must be valid, or nothing changes. */
	while ((line = strsep(&cur, " \n")) != NULL) {
		char *val;
		unsigned int u;
		unsigned long long ull;

		if (!*line)
			continue;
		val = strchr(line, '=');
		if (!val) {
			ret = -EINVAL;
			break;
		}
		*val++ = 0;
		if (!strcmp(line, "n_ctx")) {
			ret = kstrtouint(val, 10, &u);
			if (!ret && (u < 16 || u > 32768))
				ret = -EINVAL;
			next.n_ctx = u;
		} else if (!strcmp(line, "max_tokens")) {
			ret = kstrtouint(val, 10, &u);
			if (!ret && (u < 1 || u > 65536))
				ret = -EINVAL;
			next.max_tokens = u;
		} else if (!strcmp(line, "temp")) {
			ret = lx_parse_milli(val, &next.temp_milli);
			if (!ret && next.temp_milli > 5000)
				ret = -EINVAL;
		} else if (!strcmp(line, "top_k")) {
			ret = kstrtouint(val, 10, &next.top_k);
		} else if (!strcmp(line, "top_p")) {
			ret = lx_parse_milli(val, &next.top_p_milli);
			if (!ret && next.top_p_milli > 1000)
				ret = -EINVAL;
		} else if (!strcmp(line, "seed")) {
			ret = kstrtoull(val, 10, &ull);
			next.seed = ull;
		} else if (!strcmp(line, "timeout")) {
			ret = kstrtouint(val, 10, &timeout);
			if (!ret && (timeout < 1 || timeout > 3600))
				ret = -EINVAL;
		} else {
			ret = -EINVAL;
		}
		if (ret) {
			ret = -EINVAL;
			break;
		}
	}
	if (!ret) {
		lx_cfg = next;
		lx_timeout_s = timeout;
	}
	mutex_unlock(&lx_config_lock);
	kfree(buf);
	return ret ? ret : len;
}

static int lx_status_open(struct inode *i, struct file *f) { return single_open(f, lx_status_show, NULL); }
static int lx_stats_open(struct inode *i, struct file *f) { return single_open(f, lx_stats_show, NULL); }
static int lx_config_open(struct inode *i, struct file *f) { return single_open(f, lx_config_show, NULL); }

static const struct proc_ops lx_status_ops = {
	.proc_open = lx_status_open, .proc_read = seq_read, .proc_lseek = seq_lseek, .proc_release = single_release,
};
static const struct proc_ops lx_stats_ops = {
	.proc_open = lx_stats_open, .proc_read = seq_read, .proc_lseek = seq_lseek, .proc_release = single_release,
};
static const struct proc_ops lx_config_ops = {
	.proc_open = lx_config_open, .proc_read = seq_read, .proc_write = lx_config_write,
	.proc_lseek = seq_lseek, .proc_release = single_release,
};

/* ---- module ---- */

static int __init lx_init(void)
{
	size_t file_size = 0;
	ssize_t n;
	char err[160] = "";
	int ret;

	ret = lx_pool_start();
	if (ret)
		return ret;
	n = kernel_read_file_from_path(model, 0, &lx_model_data, INT_MAX, &file_size, READING_FIRMWARE);
	if (n < 0) {
		pr_err("llamux: cannot read model %s: error %zd\n", model, n);
		lx_pool_stop();
		return (int)n;
	}
	lx_model_size = n;
	if (sha256 && *sha256) {
		ret = lx_check_digest(lx_model_data, lx_model_size, sha256);
		if (ret)
			goto free_data;
	}
	kernel_fpu_begin();
	lx_engine = (struct lx_engine *)LX_CALL(llamux_engine_new, lx_model_data, lx_model_size, err, sizeof(err), 0, 0);
	if (lx_engine)
		LX_CALL(llamux_engine_info, lx_engine, &lx_n_vocab, &lx_n_ctx_train, &lx_n_layer, 0, 0);
	kernel_fpu_end();
	if (!lx_engine) {
		pr_err("llamux: %s is not a usable model: %s\n", model, err);
		ret = -EINVAL;
		goto free_data;
	}
	lx_dir = proc_mkdir("llamux", NULL);
	if (!lx_dir ||
	    !proc_create("prompt", 0660, lx_dir, &lx_prompt_ops) ||
	    !proc_create("response", 0440, lx_dir, &lx_response_ops) ||
	    !proc_create("status", 0444, lx_dir, &lx_status_ops) ||
	    !proc_create("stats", 0444, lx_dir, &lx_stats_ops) ||
	    !proc_create("config", 0600, lx_dir, &lx_config_ops)) {
		ret = -ENOMEM;
		goto free_proc;
	}
	pr_info("llamux: loaded %s (%zu bytes, %u layers, vocabulary %u)\n", model, lx_model_size, lx_n_layer, lx_n_vocab);
	return 0;

free_proc:
	proc_remove(lx_dir);
	kernel_fpu_begin();
	LX_CALL(llamux_engine_free, lx_engine, 0, 0, 0, 0, 0);
	kernel_fpu_end();
free_data:
	vfree(lx_model_data);
	lx_pool_stop();
	return ret;
}

static void __exit lx_exit(void)
{
	proc_remove(lx_dir);
	if (lx_detached)
		lx_file_free(lx_detached);
	kernel_fpu_begin();
	LX_CALL(llamux_engine_free, lx_engine, 0, 0, 0, 0, 0);
	kernel_fpu_end();
	vfree(lx_model_data);
	lx_pool_stop();
	pr_info("llamux: unloaded (engine memory left: %lld bytes)\n", atomic64_read(&lx_alloc_bytes));
}

module_init(lx_init);
module_exit(lx_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Llamux: a language model engine in the kernel");
