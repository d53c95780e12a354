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
 * which streams the newest such answer. One kernel thread, the engine, generates for every
 * session: each step decodes one token for all decoding sessions together, in one pass over the
 * weights (continuous batching), and feeds prompt chunks to new sessions; one FPU section per
 * engine call, yielding in between. Matrix products are shared with a pool of kernel threads,
 * one per CPU. After load a kernel thread asks the model for a few haiku (module parameter
 * "haikus"), which a panic notifier prints (fixed ones when none was generated).
 */
#include <linux/module.h>
#include <linux/err.h>
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
#include <linux/panic_notifier.h>
#include <linux/delay.h>
#include <linux/cred.h>
#include <asm/fpu/api.h>
#include "llamux.h"
#include "llamux_trust.h"

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
MODULE_PARM_DESC(max_sessions, "Sessions open at once (1 to 256), all decoded together in each engine step");

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
static atomic64_t lx_engine_ns = ATOMIC64_INIT(0);	/* engine steps that decoded, all sessions at once */
static atomic64_t lx_engine_steps = ATOMIC64_INIT(0);
static atomic64_t lx_batch_max = ATOMIC64_INIT(0);	/* most sessions decoded in one step */

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
 * for allocation). One product uses the pool at a time (the engine thread's); a caller that
 * finds it busy runs its chunks itself.
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

/*
 * ---- sessions and the engine ----
 *
 * Every open prompt file with a prompt written is a session on the engine's active list. One
 * kernel thread, the engine, steps them all: each step first feeds prompt chunks to the
 * sessions still feeding theirs (round robin, about LX_PROMPT_BUDGET tokens per step in all, so
 * that a long prompt does not hold up the sessions that are decoding), then decodes one token
 * for every other session in one call (llamux_decode_step: each samples, then all the sampled
 * tokens are fed in one pass over the weights). Each step's text goes to the session's FIFO,
 * from which its reader copies it. A session whose FIFO has no room for another token is left
 * out of the steps until its reader catches up (it waits, the others go on); one that reaches
 * its timeout leaves, as does one that ends or fails. The engine holds lx_eng.lock for a whole
 * step, so a file that joins or is released waits at most one step, and a released file's
 * session is never in use when it is freed. Every engine call is one FPU section; the engine
 * yields between calls and sleeps when no session can be stepped.
 */
#define LX_PIECE_MAX 256	/* the text of one token (a longer one is cut) */
#define LX_PROMPT_BUDGET 32	/* prompt tokens per engine step, all sessions together */
#define LX_MAX_CTX 32768	/* the largest n_ctx the config takes */
#define LX_MAX_SESSIONS 256

struct lx_file {
	struct mutex lock;		/* serializes write/read/release */
	struct lx_session *session;	/* freed as soon as the session leaves the engine */
	struct list_head node;		/* on lx_eng.active while active */
	bool active;			/* stepped by the engine (under lx_eng.lock) */
	bool prompting;			/* still feeding its prompt (engine only) */
	DECLARE_KFIFO(out, u8, LX_FIFO_SIZE);
	wait_queue_head_t readable;	/* output appended or generation ended */
	bool started;
	bool was_read;
	bool done;
	int error;
	u32 generated;			/* tokens so far (engine only) */
	unsigned long deadline;		/* jiffies at which the session times out */
	ktime_t t_start, t_gen;
	u8 piece[LX_PIECE_MAX];		/* the text of the engine's last step */
	char err[128];
	u32 uid;			/* the opener's effective uid: the answer is its */
	bool quota;			/* counted in uid's quota while open */
	bool counted;			/* holds one of max_sessions (from its prompt on) */
	bool cancelled;			/* released before its generation ended */
	u32 tokens_in;			/* prompt tokens fed (engine only) */
	struct lx_audit_rec rec;	/* this request's audit record, written when it ends */
	struct list_head unread;	/* on lx_detached while closed unread */
};

static struct {
	struct task_struct *task;
	struct mutex lock;		/* the active list; held by the engine for a whole step */
	struct list_head active;
	wait_queue_head_t wake;
	atomic_t kicks;			/* bumped by whatever may give an idle engine work */
	struct lx_batch *batch;		/* the shared buffers of llamux_decode_step */
	struct lx_slot *slots;		/* max_sessions of each */
	struct lx_file **files;
} lx_eng;

static void lx_engine_kick(void)
{
	atomic_inc(&lx_eng.kicks);
	if (wq_has_sleeper(&lx_eng.wake))	/* a full barrier, after the increment */
		wake_up(&lx_eng.wake);
}

/* Under lx_eng.lock, once: @f's request ended (with @error); its tokens are counted and audited. */
static void lx_request_end(struct lx_file *f, int error)
{
	f->rec.outcome = error == -ETIMEDOUT ? LX_TIMED_OUT : error ? LX_FAILED : f->cancelled ? LX_CANCELLED : LX_COMPLETED;
	f->rec.tokens_in = f->tokens_in;
	f->rec.tokens_out = f->generated;
	if (f->quota)
		lx_quota_charge(f->uid, f->tokens_in + f->generated);
	lx_audit(&f->rec);
}

/* Under lx_eng.lock: takes @f out of the engine, frees its session and tells its reader. */
static void lx_retire(struct lx_file *f, int error)
{
	if (f->started && !f->done)
		lx_request_end(f, error);
	if (f->active) {
		list_del(&f->node);
		f->active = false;
		if (f->generated)
			atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), f->t_gen)), &lx_gen_ns);
	}
	if (f->session) {
		kernel_fpu_begin();
		LX_CALL(llamux_session_free, f->session, 0, 0, 0, 0, 0);
		kernel_fpu_end();
		f->session = NULL;
	}
	if (error && !f->error)
		f->error = error;
	smp_store_release(&f->done, true);	/* after the error and the last output */
	wake_up_interruptible(&f->readable);
}

static void lx_engine_expire(void)
{
	struct lx_file *f, *tmp;

	list_for_each_entry_safe(f, tmp, &lx_eng.active, node)
		if (time_after(jiffies, f->deadline))
			lx_retire(f, -ETIMEDOUT);
}

/* Prompt chunks for the sessions still feeding theirs; true when there were any. */
static bool lx_engine_prompts(void)
{
	struct lx_file *f;
	unsigned int n = 0, i, budget = 0;
	int ret;

	list_for_each_entry(f, &lx_eng.active, node)
		if (f->prompting && n < max_sessions)
			lx_eng.files[n++] = f;
	for (i = 0; i < n && budget < LX_PROMPT_BUDGET; i++) {
		u32 fed = 0;

		f = lx_eng.files[i];
		kernel_fpu_begin();
		ret = (int)LX_CALL(llamux_session_prompt, lx_engine, f->session, &fed, 0, 0, 0);
		kernel_fpu_end();
		f->tokens_in += fed;
		budget += max(fed, 1u);
		if (ret < 0) {
			lx_retire(f, ret == -1 ? 0 : -EIO);
			continue;
		}
		f->prompting = ret > 0;
		/* To the back: the next step begins with the sessions this one did not reach. */
		list_move_tail(&f->node, &lx_eng.active);
		cond_resched();
	}
	return n > 0;
}

/* One token for every decoding session whose reader has room for it; true when there were any. */
static bool lx_engine_decode(void)
{
	struct lx_file *f;
	size_t n = 0, i;
	s64 tokens = 0;
	ktime_t t0;

	list_for_each_entry(f, &lx_eng.active, node) {
		if (f->prompting || kfifo_avail(&f->out) < LX_PIECE_MAX || n >= max_sessions)
			continue;
		lx_eng.files[n] = f;
		lx_eng.slots[n] = (struct lx_slot){ .session = f->session, .out = f->piece, .out_len = LX_PIECE_MAX };
		n++;
	}
	if (n == 0)
		return false;
	t0 = ktime_get();
	kernel_fpu_begin();
	LX_CALL(llamux_decode_step, lx_engine, lx_eng.batch, lx_eng.slots, n, 0, 0);
	kernel_fpu_end();
	for (i = 0; i < n; i++) {
		struct lx_slot *s = &lx_eng.slots[i];

		f = lx_eng.files[i];
		/* Count tokens, not bytes: a token's piece may be empty (part of a UTF-8 sequence). */
		if (s->generated != f->generated) {
			if (!f->generated) {
				f->t_gen = t0;	/* decoding starts with this step */
				atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), f->t_start)), &lx_first_token_ns_sum);
				atomic64_inc(&lx_first_token_count);
			}
			f->generated = s->generated;
			tokens++;
		}
		if (s->len > 0) {
			kfifo_in(&f->out, f->piece, min_t(u32, s->len, LX_PIECE_MAX));
			wake_up_interruptible(&f->readable);
		}
		if (s->status != 0)
			lx_retire(f, s->status > 0 ? 0 : -EIO);
	}
	if (tokens) {
		atomic64_add(tokens, &lx_tokens);
		atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), t0)), &lx_engine_ns);
		atomic64_inc(&lx_engine_steps);
		if (tokens > atomic64_read(&lx_batch_max))
			atomic64_set(&lx_batch_max, tokens);
	}
	return true;
}

static int lx_engine_thread(void *arg)
{
	while (!kthread_should_stop()) {
		int kicks = atomic_read(&lx_eng.kicks);
		bool worked, idle;

		mutex_lock(&lx_eng.lock);
		lx_engine_expire();
		worked = lx_engine_prompts();
		worked |= lx_engine_decode();
		idle = list_empty(&lx_eng.active);
		mutex_unlock(&lx_eng.lock);
		if (worked) {
			cond_resched();
			continue;
		}
		/*
		 * Nothing to step: no session, or each waits for its reader. A new session or a
		 * read wakes the engine; while sessions wait, it also looks at their timeouts
		 * every second.
		 */
		wait_event_interruptible_timeout(lx_eng.wake,
						 kthread_should_stop() || atomic_read(&lx_eng.kicks) != kicks,
						 idle ? MAX_SCHEDULE_TIMEOUT : HZ);
	}
	return 0;
}

/*
 * A new session's file state (charged to the opener's memory cgroup). It takes one of
 * max_sessions only once a prompt is written (lx_file_start), so that idle opens hold none.
 */
static struct lx_file *lx_file_new(void)
{
	struct lx_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return ERR_PTR(-ENOMEM);
	mutex_init(&f->lock);
	INIT_LIST_HEAD(&f->node);
	INIT_LIST_HEAD(&f->unread);
	INIT_KFIFO(f->out);
	init_waitqueue_head(&f->readable);
	return f;
}

/* The uid an open file acts for: its opener's effective uid, in the initial user namespace. */
static u32 lx_file_uid(struct file *file)
{
	return from_kuid_munged(&init_user_ns, file->f_cred->euid);
}

/* Each open prompt file counts in its uid's quota (uid_sessions): -EBUSY beyond, audited. */
static int lx_prompt_open(struct inode *inode, struct file *file)
{
	u32 uid = lx_file_uid(file);
	struct lx_file *f;
	int ret;

	if (lx_quota_on()) {
		ret = lx_quota_open(uid);
		if (ret) {
			struct lx_audit_rec r = { .outcome = LX_TOO_MANY_SESSIONS };

			lx_audit_asker(&r, uid);
			lx_sha256("", 0, r.prompt_sha256);	/* no prompt yet */
			lx_audit(&r);
			return ret;
		}
	}
	f = lx_file_new();
	if (IS_ERR(f)) {
		if (lx_quota_on())
			lx_quota_close(uid);
		return PTR_ERR(f);
	}
	f->uid = uid;
	f->quota = lx_quota_on();
	file->private_data = f;
	return 0;
}

/*
 * Under f->lock: starts @f's generation of @text (a kernel buffer) with @cfg, the session
 * timing out after @timeout seconds, and hands it to the engine. 0 or a negative errno.
 */
static int lx_file_start(struct lx_file *f, const struct lx_config *cfg, unsigned int timeout, const char *text,
			 size_t len)
{
	int ret;

	if (f->started)
		return -EBUSY;	/* one prompt per open file */
	/* The request's audit record: who asks, and what. */
	memset(&f->rec, 0, sizeof(f->rec));
	lx_audit_asker(&f->rec, f->uid);
	ret = lx_sha256(text, len, f->rec.prompt_sha256);
	if (ret)
		return ret;
	/* Over its tokens for this minute: refused, the engine serves the others. */
	ret = f->quota ? lx_quota_admit(f->uid) : 0;
	if (ret) {
		f->rec.outcome = LX_OVER_TOKEN_QUOTA;
		lx_audit(&f->rec);
		return ret;
	}
	if (atomic_inc_return(&lx_live) > max_sessions) {
		atomic_dec(&lx_live);
		f->rec.outcome = LX_REFUSED;
		lx_audit(&f->rec);
		return -EBUSY;
	}
	/* Tokenizing and allocating the session happen here, in the writer's time. */
	kernel_fpu_begin();
	f->session = (struct lx_session *)LX_CALL(llamux_session_new, lx_engine, cfg, text, len, f->err, sizeof(f->err));
	kernel_fpu_end();
	/* ERR_PTR(-EINVAL) for a refused prompt, ERR_PTR(-ENOMEM) when memory ran out. */
	if (IS_ERR_OR_NULL(f->session)) {
		ret = f->session ? PTR_ERR(f->session) : -EINVAL;
		f->session = NULL;
		atomic_dec(&lx_live);
		f->rec.outcome = LX_REFUSED;
		lx_audit(&f->rec);
		pr_info_ratelimited("llamux: prompt refused: %s\n", f->err);
		return ret;
	}
	f->counted = true;
	f->started = true;
	f->t_start = ktime_get();
	f->deadline = jiffies + (unsigned long)timeout * HZ;
	atomic64_inc(&lx_requests);
	mutex_lock(&lx_eng.lock);
	f->prompting = true;
	f->active = true;
	list_add_tail(&f->node, &lx_eng.active);
	mutex_unlock(&lx_eng.lock);
	lx_engine_kick();
	return 0;
}

static ssize_t lx_prompt_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct lx_file *f = file->private_data;
	struct lx_config cfg;
	unsigned int timeout;
	char *text;
	ssize_t ret = len;
	int err;

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
	mutex_lock(&lx_config_lock);
	cfg = lx_cfg;
	timeout = lx_timeout_s;
	mutex_unlock(&lx_config_lock);
	mutex_lock(&f->lock);
	err = lx_file_start(f, &cfg, timeout, text, len);
	if (err)
		ret = err;
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
	ret = wait_event_interruptible(f->readable, !kfifo_is_empty(&f->out) || smp_load_acquire(&f->done));
	if (ret)
		return ret;	/* -ERESTARTSYS: interrupted by a signal */
	mutex_lock(&f->lock);
	ret = kfifo_to_user(&f->out, buf, len, &copied);
	mutex_unlock(&f->lock);
	if (copied)
		lx_engine_kick();	/* the session may have been waiting for room */
	if (ret)
		return ret;
	if (copied == 0 && f->error)
		return f->error;
	return copied;
}

/* Stops a session's generation and frees it. */
static void lx_file_free(struct lx_file *f)
{
	mutex_lock(&lx_eng.lock);
	f->cancelled = true;	/* if it has not ended yet */
	lx_retire(f, 0);
	mutex_unlock(&lx_eng.lock);
	if (f->quota)
		lx_quota_close(f->uid);
	if (f->counted)
		atomic_dec(&lx_live);
	kfree(f);
}

/*
 * Answers whose prompt file was closed unread, for /proc/llamux/response: the newest of each
 * uid, read only by that uid. Each holds its session (and its place in max_sessions and in its
 * uid's quota) until it is read or replaced.
 */
static DEFINE_MUTEX(lx_detached_lock);
static LIST_HEAD(lx_detached);

/* Under lx_detached_lock: takes @uid's unread answer off the list (NULL when none). */
static struct lx_file *lx_detached_take(u32 uid)
{
	struct lx_file *d;

	list_for_each_entry(d, &lx_detached, unread) {
		if (d->uid == uid) {
			list_del_init(&d->unread);
			return d;
		}
	}
	return NULL;
}

static int lx_prompt_release(struct inode *inode, struct file *file)
{
	struct lx_file *f = file->private_data, *old;

	if (f->started && !f->was_read) {
		mutex_lock(&lx_detached_lock);
		old = lx_detached_take(f->uid);
		list_add(&f->unread, &lx_detached);
		mutex_unlock(&lx_detached_lock);
		if (old)
			lx_file_free(old);	/* the uid's older unread answer is dropped */
		return 0;
	}
	lx_file_free(f);
	return 0;
}

static int lx_response_open(struct inode *inode, struct file *file)
{
	mutex_lock(&lx_detached_lock);
	file->private_data = lx_detached_take(lx_file_uid(file));
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

/*
 * ---- kernel-panic haiku ----
 *
 * Nothing can be generated once the kernel panics, so a kernel thread asks the model for a few
 * haiku right after load, one at a time through the engine like any session, and keeps the
 * cleaned text; a panic notifier prints one of them, or one of the fixed ones when none was
 * generated (generation off, the model too slow, or its text unusable). The notifier only reads
 * buffers published before the count that covers them.
 */
#define LX_HAIKUS 3
#define LX_HAIKU_MAX 240	/* bytes of one haiku, cleaned */
#define LX_HAIKU_TOKENS 48
#define LX_HAIKU_TIMEOUT 300	/* seconds a haiku may take */

static unsigned int haikus = LX_HAIKUS;
module_param(haikus, uint, 0444);
MODULE_PARM_DESC(haikus, "Panic haiku to generate at load (0 to 3; 0: fixed ones only)");

static const char *const lx_fixed_haiku[] = {
	"Silent registers\nthe stack unwinds into night\nno process remains",
	"A null pointer falls\nthrough the cold pages of RAM\nthe kernel lies still",
	"Interrupts grow still\nthe scheduler dreams no more\nreboot, and begin",
};

static char lx_haiku[LX_HAIKUS][LX_HAIKU_MAX];
static atomic_t lx_haiku_ready = ATOMIC_INIT(0);	/* generated and cleaned, in order */
static const char *lx_haiku_why = "not generated yet";	/* why fewer than asked, for status */
static struct task_struct *lx_haiku_task;

/*
 * The model's text as a haiku: control characters dropped, at most three non-empty lines,
 * each trimmed; false when nothing printable is left.
 */
static bool lx_haiku_clean(const char *in, size_t len, char *out)
{
	size_t i, n = 0, line_start = 0;
	int lines = 0;

	for (i = 0; i < len && lines < 3; i++) {
		u8 c = in[i];

		if (c == '\n' || c == '\r') {
			while (n > line_start && out[n - 1] == ' ')
				n--;
			if (n > line_start) {
				lines++;
				if (lines < 3 && n < LX_HAIKU_MAX - 1)
					out[n++] = '\n';
				line_start = n;
			}
			continue;
		}
		if (c == '\t')
			c = ' ';
		if (c < 0x20 || c == 0x7f)
			continue;
		if (c == ' ' && n == line_start)
			continue;	/* leading blanks */
		if (n < LX_HAIKU_MAX - 1)
			out[n++] = c;
	}
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\n'))
		n--;
	/* Never end inside a UTF-8 sequence that was cut at LX_HAIKU_MAX. */
	if (n > 0 && (u8)out[n - 1] >= 0x80) {
		size_t k = n;

		while (k > 0 && ((u8)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (u8)out[k - 1] >= 0xc0) {
			u8 lead = out[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (n - (k - 1) < want)
				n = k - 1;
		}
	}
	out[n] = 0;
	return n > 0;
}

/* Generates an answer to @user (in the model's chat format) into @out; its length or an errno. */
static long lx_generate(const char *user, u64 seed, char *out, size_t out_len)
{
	struct lx_config cfg = { .n_ctx = 256, .max_tokens = LX_HAIKU_TOKENS, .temp_milli = 800, .top_k = 40,
				 .top_p_milli = 950, .seed = seed };
	char *prompt;
	struct lx_file *f;
	long len, got = 0;
	int ret;

	prompt = kmalloc(1024, GFP_KERNEL);
	if (!prompt)
		return -ENOMEM;
	kernel_fpu_begin();
	len = LX_CALL(llamux_engine_chat, lx_engine, user, strlen(user), prompt, 1024, 0);
	kernel_fpu_end();
	if (len == 0)	/* no chat format: a plain continuation */
		len = scnprintf(prompt, 1024, "%s\n\n", user);
	if (len < 0) {
		kfree(prompt);
		return len;
	}
	f = lx_file_new();
	if (IS_ERR(f)) {
		kfree(prompt);
		return PTR_ERR(f);
	}
	f->was_read = true;
	mutex_lock(&f->lock);
	ret = lx_file_start(f, &cfg, LX_HAIKU_TIMEOUT, prompt, len);
	mutex_unlock(&f->lock);
	kfree(prompt);
	while (!ret) {
		bool done;

		wait_event_interruptible(f->readable,
					 !kfifo_is_empty(&f->out) || smp_load_acquire(&f->done) || kthread_should_stop());
		done = smp_load_acquire(&f->done);	/* before taking what is left */
		if (!kfifo_is_empty(&f->out)) {
			got += kfifo_out(&f->out, out + got, out_len - 1 - got);
			lx_engine_kick();	/* the session may have been waiting for room */
		}
		if (got >= (long)out_len - 1 || kthread_should_stop())
			break;
		if (done) {
			ret = f->error;
			break;
		}
	}
	lx_file_free(f);
	if (ret)
		return ret;
	out[got] = 0;
	return got;
}

static int lx_haiku_thread(void *arg)
{
	static const char *const ask[] = {
		"Write a haiku about a computer crashing. Reply with the haiku only.",
		"Write a haiku about the kernel of an operating system dying. Reply with the haiku only.",
		"Write a haiku about lost data and a cold machine. Reply with the haiku only.",
	};
	char *buf = kmalloc(LX_HAIKU_MAX * 2, GFP_KERNEL);
	unsigned int i, want = min_t(unsigned int, haikus, LX_HAIKUS);
	int ready = 0;

	lx_haiku_why = want ? "generating" : "generation off (haikus=0)";
	/* The haiku come second: they wait for the sessions of the boot (its greeting) to end. */
	msleep_interruptible(2000);
	for (i = 0; buf && i < want && !kthread_should_stop(); i++) {
		long n;

		while (atomic_read(&lx_live) > 0 && !kthread_should_stop())
			msleep_interruptible(200);
		if (kthread_should_stop())
			break;
		n = lx_generate(ask[i], 1000 + i, buf, LX_HAIKU_MAX * 2);

		if (n == -ETIMEDOUT) {
			lx_haiku_why = "the model was too slow";
			break;
		}
		if (n < 0) {
			pr_info("llamux: panic haiku %u not generated: error %ld\n", i + 1, n);
			lx_haiku_why = "generation failed";
			break;
		}
		if (!lx_haiku_clean(buf, n, lx_haiku[ready]))
			continue;
		ready++;
		smp_wmb();	/* the text before the count that covers it */
		atomic_set(&lx_haiku_ready, ready);
	}
	if (!buf)
		lx_haiku_why = "out of memory";
	else if (ready == (int)want && want)
		lx_haiku_why = "all generated";
	else if (ready < (int)want && !strcmp(lx_haiku_why, "generating"))
		lx_haiku_why = kthread_should_stop() ? "stopped" : "the model gave no usable text";
	kfree(buf);
	if (want)
		pr_info("llamux: %d of %u panic haiku generated (%s)\n", ready, want, lx_haiku_why);
	/* kthread_stop() needs the thread alive: wait for it. */
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

/* Prints one haiku, line by line; only reads memory published before the panic. */
static int lx_panic_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	int ready = atomic_read(&lx_haiku_ready);
	const char *h, *end;
	unsigned int pick;

	smp_rmb();
	pick = (unsigned int)(jiffies % (ready ? ready : ARRAY_SIZE(lx_fixed_haiku)));
	h = ready ? lx_haiku[pick] : lx_fixed_haiku[pick];
	pr_emerg("llamux: a haiku for this panic (%s):\n",
		 ready ? "written by the model at load" : "a fixed one, none was generated");
	while (*h) {
		end = strchrnul(h, '\n');
		pr_emerg("llamux:     %.*s\n", (int)(end - h), h);
		h = *end ? end + 1 : end;
	}
	return NOTIFY_DONE;
}

static struct notifier_block lx_panic_nb = {
	.notifier_call = lx_panic_notify,
};

/* ---- status, stats, config ---- */

static int lx_status_show(struct seq_file *m, void *v)
{
	seq_printf(m, "model: %s\nbytes: %zu\nvocab: %u\nlayers: %u\ncontext_train: %u\nsessions: %d/%u\nthreads: %d\n",
		   model, lx_model_size, lx_n_vocab, lx_n_layer, lx_n_ctx_train, atomic_read(&lx_live), max_sessions,
		   lx_pool.n + 1);
	seq_printf(m, "engine: one step decodes up to %u sessions together, plus %d prompt tokens\n", max_sessions,
		   LX_PROMPT_BUDGET);
	seq_printf(m, "panic_haiku: %d generated (%s)\n", atomic_read(&lx_haiku_ready), lx_haiku_why);
	return 0;
}

static int lx_stats_show(struct seq_file *m, void *v)
{
	s64 tokens = atomic64_read(&lx_tokens), ns = atomic64_read(&lx_gen_ns);
	s64 ft = atomic64_read(&lx_first_token_count);
	s64 milli_tps = ns > 0 ? div64_s64(tokens * 1000LL * NSEC_PER_SEC, ns) : 0;
	/* Tokens over the time of the engine's decoding steps: all sessions' tokens per second. */
	s64 ens = atomic64_read(&lx_engine_ns);
	s64 milli_agg = ens > 0 ? div64_s64(tokens * 1000LL * NSEC_PER_SEC, ens) : 0;

	seq_printf(m, "requests: %lld\ntokens: %lld\ndecode_us: %lld\ntokens_per_s: %lld.%03lld\n",
		   atomic64_read(&lx_requests), tokens, div64_s64(ns, NSEC_PER_USEC), milli_tps / 1000,
		   milli_tps % 1000);
	seq_printf(m, "first_token_ms: %lld\nlive_sessions: %d\nengine_bytes: %lld\nmodel_bytes: %zu\n",
		   ft ? div64_s64(atomic64_read(&lx_first_token_ns_sum), ft * NSEC_PER_MSEC) : 0,
		   atomic_read(&lx_live), atomic64_read(&lx_alloc_bytes), lx_model_size);
	seq_printf(m, "engine_steps: %lld\nengine_decode_us: %lld\nengine_tokens_per_s: %lld.%03lld\nbatch_max: %lld\n",
		   atomic64_read(&lx_engine_steps), div64_s64(ens, NSEC_PER_USEC), milli_agg / 1000, milli_agg % 1000,
		   atomic64_read(&lx_batch_max));
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
			if (!ret && (u < 16 || u > LX_MAX_CTX))
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

static void lx_engine_stop(void)
{
	if (lx_eng.task)
		kthread_stop(lx_eng.task);
	lx_eng.task = NULL;
	if (lx_eng.batch) {
		kernel_fpu_begin();
		LX_CALL(llamux_batch_free, lx_eng.batch, 0, 0, 0, 0, 0);
		kernel_fpu_end();
		lx_eng.batch = NULL;
	}
	kfree(lx_eng.slots);
	kfree(lx_eng.files);
	lx_eng.slots = NULL;
	lx_eng.files = NULL;
}

/* The shared decoding buffers, sized for max_sessions, and the engine thread. */
static int lx_engine_start(void)
{
	char err[160] = "";
	struct task_struct *t;
	int ret;

	mutex_init(&lx_eng.lock);
	INIT_LIST_HEAD(&lx_eng.active);
	init_waitqueue_head(&lx_eng.wake);
	max_sessions = clamp(max_sessions, 1u, (unsigned int)LX_MAX_SESSIONS);
	lx_eng.slots = kcalloc(max_sessions, sizeof(*lx_eng.slots), GFP_KERNEL);
	lx_eng.files = kcalloc(max_sessions, sizeof(*lx_eng.files), GFP_KERNEL);
	if (!lx_eng.slots || !lx_eng.files) {
		lx_engine_stop();
		return -ENOMEM;
	}
	kernel_fpu_begin();
	lx_eng.batch = (struct lx_batch *)LX_CALL(llamux_batch_new, lx_engine, max_sessions, LX_MAX_CTX, err,
						 sizeof(err), 0);
	kernel_fpu_end();
	if (IS_ERR_OR_NULL(lx_eng.batch)) {
		ret = lx_eng.batch ? PTR_ERR(lx_eng.batch) : -ENOMEM;
		lx_eng.batch = NULL;
		pr_err("llamux: %s\n", err);
		lx_engine_stop();
		return ret;
	}
	t = kthread_run(lx_engine_thread, NULL, "llamux-engine");
	if (IS_ERR(t)) {
		lx_engine_stop();
		return PTR_ERR(t);
	}
	lx_eng.task = t;
	return 0;
}

static int __init lx_init(void)
{
	size_t file_size = 0;
	ssize_t n;
	char err[160] = "";
	int ret;

	ret = lx_pool_start();
	if (ret)
		return ret;
	ret = lx_trust_start();
	if (ret) {
		lx_pool_stop();
		return ret;
	}
	n = kernel_read_file_from_path(model, 0, &lx_model_data, INT_MAX, &file_size, READING_FIRMWARE);
	if (n < 0) {
		pr_err("llamux: cannot read model %s: error %zd\n", model, n);
		lx_trust_stop();
		lx_pool_stop();
		return (int)n;
	}
	lx_model_size = n;
	/* Its digest (sha256=) and signature (pubkey=), before the engine parses it. */
	ret = lx_trust_check_model(model, lx_model_data, lx_model_size, sha256);
	if (ret)
		goto free_data;
	kernel_fpu_begin();
	lx_engine = (struct lx_engine *)LX_CALL(llamux_engine_new, lx_model_data, lx_model_size, err, sizeof(err), 0, 0);
	if (!IS_ERR_OR_NULL(lx_engine))
		LX_CALL(llamux_engine_info, lx_engine, &lx_n_vocab, &lx_n_ctx_train, &lx_n_layer, 0, 0);
	kernel_fpu_end();
	/* ERR_PTR(-EINVAL) for an unusable model, ERR_PTR(-ENOMEM) when memory ran out. */
	if (IS_ERR_OR_NULL(lx_engine)) {
		ret = lx_engine ? PTR_ERR(lx_engine) : -EINVAL;
		lx_engine = NULL;
		pr_err("llamux: %s is not a usable model: %s\n", model, err);
		goto free_data;
	}
	ret = lx_engine_start();
	if (ret)
		goto free_engine;
	lx_dir = proc_mkdir("llamux", NULL);
	if (!lx_dir ||
	    !proc_create("prompt", 0660, lx_dir, &lx_prompt_ops) ||
	    !proc_create("response", 0444, lx_dir, &lx_response_ops) ||
	    !proc_create("status", 0444, lx_dir, &lx_status_ops) ||
	    !proc_create("stats", 0444, lx_dir, &lx_stats_ops) ||
	    !proc_create("config", 0600, lx_dir, &lx_config_ops) ||
	    !lx_trust_proc(lx_dir)) {
		ret = -ENOMEM;
		goto free_proc;
	}
	pr_info("llamux: loaded %s (%zu bytes, %u layers, vocabulary %u)\n", model, lx_model_size, lx_n_layer, lx_n_vocab);
	atomic_notifier_chain_register(&panic_notifier_list, &lx_panic_nb);
	lx_haiku_task = kthread_run(lx_haiku_thread, NULL, "llamux-haiku");
	if (IS_ERR(lx_haiku_task)) {
		lx_haiku_task = NULL;
		lx_haiku_why = "no thread to generate them";
	}
	return 0;

free_proc:
	proc_remove(lx_dir);
	lx_engine_stop();
free_engine:
	kernel_fpu_begin();
	LX_CALL(llamux_engine_free, lx_engine, 0, 0, 0, 0, 0);
	kernel_fpu_end();
free_data:
	vfree(lx_model_data);
	lx_trust_stop();
	lx_pool_stop();
	return ret;
}

static void __exit lx_exit(void)
{
	struct lx_file *f, *tmp;

	atomic_notifier_chain_unregister(&panic_notifier_list, &lx_panic_nb);
	if (lx_haiku_task)
		kthread_stop(lx_haiku_task);	/* its session, if any, is freed before it returns */
	proc_remove(lx_dir);	/* releases every open file, so every session */
	list_for_each_entry_safe(f, tmp, &lx_detached, unread) {
		list_del(&f->unread);
		lx_file_free(f);
	}
	lx_engine_stop();
	kernel_fpu_begin();
	LX_CALL(llamux_engine_free, lx_engine, 0, 0, 0, 0, 0);
	kernel_fpu_end();
	vfree(lx_model_data);
	lx_trust_stop();
	lx_pool_stop();
	pr_info("llamux: unloaded (engine memory left: %lld bytes)\n", atomic64_read(&lx_alloc_bytes));
}

module_init(lx_init);
module_exit(lx_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Llamux: a language model engine in the kernel");
