// SPDX-License-Identifier: GPL-2.0
/*
 * llamux.ko: a language model inside the kernel.
 *
 * The model file is read at load time (module parameter "model") into vmalloc'd memory and
 * parsed in place by the Rust engine. /proc/llamux/prompt: each open file is a session; write a
 * prompt (in one write or several), then read the response from the same file descriptor, which
 * streams as tokens are generated (reads block until data is available and are interrupted by
 * signals; poll works). The prompt starts at the first read or poll. Closing a file that has
 * been read from cancels its generation. A file closed without being read from
 * (`echo "…" > /proc/llamux/prompt`) starts its prompt then and leaves its generation running
 * for /proc/llamux/response, which streams the newest such answer. One kernel thread, the
 * engine, generates for every session: each step decodes one token for all decoding sessions
 * together, in one pass over the weights (continuous batching), and feeds prompt chunks to new
 * sessions; one FPU section per engine call, yielding in between and at every parallel
 * operation inside it. Matrix products are shared with a pool of unbound kernel threads, one
 * for each other CPU. A panic in the engine fails its sessions and stops the engine, never the
 * machine (see "services for the engine"). After load a kernel thread asks the model for a few
 * haiku (module parameter "haikus"), which a panic notifier prints (fixed ones when none was
 * generated).
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
#include <linux/poll.h>
#include <linux/sizes.h>
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
static unsigned int kv_max_mb;
module_param(kv_max_mb, uint, 0444);
MODULE_PARM_DESC(kv_max_mb, "MiB of KV cache all sessions may hold together (default: a quarter of RAM); more is refused with ENOMEM");

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
 * A Rust panic must not take the machine down. The engine is built with panic=abort: nothing
 * unwinds, and the panic handler may not return into the code that panicked. Every call into
 * Rust therefore goes through lx_call(), which records a guard (llamux_call.S: the callee-saved
 * registers, stack pointer and return address of the call) in a per-CPU slot; Rust runs only
 * inside FPU sections, with preemption off, so the slot stays the running thread's, and the
 * shim's callbacks that leave the FPU section to sleep (lx_fpu_pause) take the slot's guard with
 * them and put it back on whatever CPU they resume on.
 *
 * The panic handler (llamux_shim_panic) marks the engine dead, prints one line, makes sure no
 * pool task still runs on the frames it is about to abandon, and returns from the outermost
 * guarded call of its thread with -ENOTRECOVERABLE (llamux_escape): the Rust frames above it
 * are abandoned, never resumed, with the FPU section and preemption as that call's C caller
 * expects them. From then on no Rust code starts (lx_call refuses), Rust code still running on
 * another thread is abandoned the same way at its next callback (allocation, parallel
 * operation), the engine thread fails every session (readers get -EIO), opens and writes get
 * -ENOTRECOVERABLE, and nothing the engine owns is touched again: its memory, every block of
 * which is on the shim's list (lx_blocks), is freed by the shim at unload without running Rust
 * destructors over state a panic may have left half-changed.
 */
static atomic_t lx_dead = ATOMIC_INIT(0);
static char lx_dead_why[160];
static DEFINE_PER_CPU(struct lx_guard *, lx_guard_top);

static bool lx_is_dead(void)
{
	return atomic_read(&lx_dead) != 0;
}

static long lx_call_guarded(struct lx_guard *g)
{
	long ret;

	if (lx_is_dead())
		return -ENOTRECOVERABLE;
	/* Inside an FPU section: preemption is off, the slot is this thread's. */
	g->prev = this_cpu_read(lx_guard_top);
	this_cpu_write(lx_guard_top, g);
	ret = llamux_call(g);
	this_cpu_write(lx_guard_top, g->prev);
	return ret;
}

long lx_call(const void *fn, long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct lx_guard g = { .fn = fn, .a = { a1, a2, a3, a4, a5, a6 } };

	return lx_call_guarded(&g);
}

static void lx_blocks_adopt(struct list_head *scope);
static void lx_blocks_free(struct list_head *scope);

/*
 * As lx_call, for a call that changes nothing but what it allocates and returns (a session's
 * setup: tokenizing, the sampler, the buffers; the engine is only read). Memory running out in
 * a part of the core that cannot report it (an infallible allocation, which panics) then fails
 * just this call: the panic handler returns -ENOMEM from it, its blocks are freed, and the
 * engine lives on. Any other panic is a panic.
 */
static long lx_call_scoped(const void *fn, long a1, long a2, long a3, long a4, long a5, long a6)
{
	LIST_HEAD(scope);
	struct lx_guard g = { .fn = fn, .a = { a1, a2, a3, a4, a5, a6 }, .scope = &scope };
	long ret = lx_call_guarded(&g);

	if (ret == -ENOMEM && g.oom)
		lx_blocks_free(&scope);	/* abandoned on an allocation failure: nothing returned */
	else
		lx_blocks_adopt(&scope);
	return ret;
}

/* Leaves the FPU section (to sleep), taking this thread's guards along. */
static struct lx_guard *lx_fpu_pause(void)
{
	struct lx_guard *g = this_cpu_read(lx_guard_top);

	this_cpu_write(lx_guard_top, NULL);
	kernel_fpu_end();
	return g;
}

static void lx_fpu_resume(struct lx_guard *g)
{
	kernel_fpu_begin();
	this_cpu_write(lx_guard_top, g);
}

static void lx_pool_abandon(void);
static bool lx_pool_owned(void);
static void lx_engine_kick(void);

/*
 * Never reached while every call into Rust is guarded; the thread, whatever it is, is parked
 * for good (the rest of the module refuses work), outside its FPU section.
 */
static void __noreturn lx_park(void)
{
	kernel_fpu_end();
	pr_crit("llamux: engine panic outside a guarded call; %s parked\n", current->comm);
	for (;;) {
		set_current_state(TASK_IDLE);
		schedule();
	}
}

/* This thread's outermost guarded call (NULL: none, never while Rust runs). */
static struct lx_guard *lx_guard_outer(struct lx_guard *g)
{
	while (g && g->prev)
		g = g->prev;
	return g;
}

/* Abandons the running Rust code of this thread: returns @ret from its outermost guarded call. */
static void __noreturn lx_escape_with(long ret)
{
	struct lx_guard *g;

	if (lx_pool_owned())
		lx_pool_abandon();	/* no task of its job may outlive the frames left behind */
	g = lx_guard_outer(this_cpu_read(lx_guard_top));
	if (!g)
		lx_park();
	llamux_escape(g, ret);
}

static void __noreturn lx_escape(void)
{
	lx_escape_with(-ENOTRECOVERABLE);
}

void __noreturn llamux_shim_panic(const u8 *msg, size_t len)
{
	struct lx_guard *outer = lx_guard_outer(this_cpu_read(lx_guard_top));
	char why[sizeof(lx_dead_why)];
	char *c;

	scnprintf(why, sizeof(why), "%.*s", (int)min_t(size_t, len, sizeof(why) - 1), msg);
	/* The core's panic for an allocation that cannot fail, in a call that may be abandoned. */
	if (outer && outer->scope && outer->oom && strstr(why, "memory allocation of")) {
		pr_info_ratelimited("llamux: out of memory setting up a session: that prompt is refused\n");
		lx_escape_with(-ENOMEM);
	}
	for (c = why; *c; c++)	/* one line: the location and the message */
		if (*c == '\n')
			*c = ' ';
	if (atomic_cmpxchg(&lx_dead, 0, 1) == 0) {
		strscpy(lx_dead_why, why, sizeof(lx_dead_why));
		pr_crit("llamux: engine panic in %s, refusing further work: %s\n", current->comm, why);
		lx_engine_kick();	/* the engine fails every session */
	}
	lx_escape();
}

/*
 * Memory for the engine: kvmalloc, charged to the memory cgroup of the thread that allocates
 * (__GFP_ACCOUNT; sessions are allocated in their writer's write()), never warning (a size
 * asked for by input fails quietly, as an error). Every block is on lx_blocks, so that a dead
 * engine's memory can be freed at unload. A block's header keeps the 8-byte alignment the
 * Rust allocator expects.
 *
 * The engine is only ever entered inside kernel_fpu_begin()/kernel_fpu_end(), where preemption
 * is off and sleeping is forbidden. Allocation may sleep, so it leaves the FPU section for its
 * duration: this is a function call, across which the x86-64 ABI keeps no vector register
 * live, and kernel_fpu_begin() resets MXCSR to the default the engine expects. It is also a
 * scheduling point for long setup work (loading a model, starting a session).
 */
struct lx_block {
	struct list_head node;
	size_t size;
};

static LIST_HEAD(lx_blocks);
static DEFINE_SPINLOCK(lx_blocks_lock);
static bool lx_fault_alloc(void);

void *llamux_shim_alloc(size_t size)
{
	struct lx_guard *g = this_cpu_read(lx_guard_top), *outer = lx_guard_outer(g);
	struct lx_block *b = NULL;

	/* More than kvmalloc ever gives is a failure as any other. */
	if (size <= INT_MAX - sizeof(*b) && !(outer && outer->scope && lx_fault_alloc())) {
		g = lx_fpu_pause();
		cond_resched();
		b = kvmalloc(sizeof(*b) + size, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
		if (b) {
			b->size = size;
			/* A scoped call's blocks stay on its own list (this thread's) until it returns. */
			spin_lock(&lx_blocks_lock);
			list_add(&b->node, outer && outer->scope ? outer->scope : &lx_blocks);
			spin_unlock(&lx_blocks_lock);
			atomic64_add(size, &lx_alloc_bytes);
		}
		lx_fpu_resume(g);
	}
	if (!b && outer)
		outer->oom = true;
	if (lx_is_dead())
		lx_escape();	/* the block stays on the list, freed at unload */
	return b ? b + 1 : NULL;
}

void llamux_shim_free(void *ptr)
{
	struct lx_guard *g;
	struct lx_block *b;

	if (!ptr)
		return;
	b = (struct lx_block *)ptr - 1;
	spin_lock(&lx_blocks_lock);
	list_del(&b->node);
	spin_unlock(&lx_blocks_lock);
	atomic64_sub(b->size, &lx_alloc_bytes);
	g = lx_fpu_pause();
	kvfree(b);
	lx_fpu_resume(g);
}

/* A scoped call returned: its blocks join the others. */
static void lx_blocks_adopt(struct list_head *scope)
{
	spin_lock(&lx_blocks_lock);
	list_splice(scope, &lx_blocks);
	spin_unlock(&lx_blocks_lock);
}

/* A scoped call was abandoned: nothing refers to its blocks. Inside its caller's FPU section. */
static void lx_blocks_free(struct list_head *scope)
{
	struct lx_block *b, *tmp;

	kernel_fpu_end();
	list_for_each_entry_safe(b, tmp, scope, node) {
		atomic64_sub(b->size, &lx_alloc_bytes);
		kvfree(b);
	}
	kernel_fpu_begin();
}

/* At unload: frees the blocks still allocated (a dead engine's); returns how many bytes. */
static s64 lx_blocks_reclaim(void)
{
	struct lx_block *b, *tmp;
	s64 bytes = 0;
	LIST_HEAD(all);

	spin_lock(&lx_blocks_lock);
	list_splice_init(&lx_blocks, &all);
	spin_unlock(&lx_blocks_lock);
	list_for_each_entry_safe(b, tmp, &all, node) {
		bytes += b->size;
		atomic64_sub(b->size, &lx_alloc_bytes);
		kvfree(b);
		cond_resched();
	}
	return bytes;
}

#ifdef LX_FAULT_INJECT
/*
 * Debug builds only (kernel/build.sh --fault-inject): "fault" makes the engine panic once, at
 * 1: its next decoding step (the engine thread), 2: a task of a parallel operation on a pool
 * worker, 3: the next prompt's session setup (the reader's thread), 4: a task of a parallel
 * operation that the engine thread runs itself (the pool's owner); or 5: fails the first
 * allocation of the next session's setup (the core's tokenizer, which cannot report it, then
 * panics). Rust asks at sites 1 to 3 (2 for every task); release builds have no such parameter
 * and llamux_shim_fault() and lx_fault_alloc() are always false there, so those panics and
 * that failure are unreachable.
 */
static unsigned int fault;
module_param(fault, uint, 0600);
MODULE_PARM_DESC(fault, "Debug builds: panic inside the engine once (1 decode step, 2 pool worker's task, 3 session setup, 4 pool owner's task) or fail an allocation (5 session setup)");
static bool lx_is_worker(void);
static bool lx_pool_owned(void);
static bool lx_pool_owner_in_task(void);

bool llamux_shim_fault(u32 site)
{
	u32 want = READ_ONCE(fault);

	if (site == 2 && want == 2 && !lx_is_worker())
		return false;
	if (site == 2 && want == 4) {
		if (!lx_pool_owned() || !lx_pool_owner_in_task())
			return false;
		site = 4;
	}
	if (want != site)
		return false;
	return cmpxchg(&fault, want, 0) == want;
}

static bool lx_fault_alloc(void)
{
	return READ_ONCE(fault) == 5 && cmpxchg(&fault, 5, 0) == 5;
}
#else
bool llamux_shim_fault(u32 site)
{
	return false;
}

static bool lx_fault_alloc(void)
{
	return false;
}
#endif

/*
 * ---- worker threads for the engine's Parallel ----
 *
 * The engine splits each operation (the fused matrix-vector products of a layer, the attention
 * heads) into tasks and hands them to llamux_shim_parallel(), called from Rust inside an FPU
 * section. The tasks are claimed by the caller and by the pool's kernel threads (unbound, one
 * for each other online CPU, or threads - 1), each in its own FPU section. A task is claimed
 * from one word holding the job's number and the next task's index, so a worker that looks late
 * can never take a task of a later job with an earlier job's function. The caller waits for its
 * tasks to have run, not for every worker to have looked at the job: a worker that was asleep
 * or preempted holds nobody up (no convoy). It spins for them briefly, then leaves its FPU
 * section to sleep (a function call, as for allocation). One operation uses the pool at a
 * time (the engine thread's); a caller that finds it busy runs its tasks itself.
 *
 * Each operation is also a scheduling point: the caller ends its FPU section and yields there
 * when the scheduler wants the CPU, so preemption is never off for more than one operation
 * (a fraction of a layer) even with one CPU or threads=1.
 */
#define LX_MAX_WORKERS 63
#define LX_CLAIM_CLOSED 0xffffffffu

static struct {
	int n;
	struct task_struct *task[LX_MAX_WORKERS];
	atomic_t busy;
	struct task_struct *owner;	/* the caller whose job is current, while busy */
	bool owner_in_task;		/* the owner is running one of its job's tasks */
	const void *ctx;
	void (*fn)(const void *ctx, size_t i);
	size_t n_chunks;
	atomic64_t claim;		/* job number << 32 | next task (LX_CLAIM_CLOSED: none) */
	atomic_long_t finished;		/* tasks of the current job that have returned */
	size_t claimed;			/* tasks taken before the owner closed the job */
	unsigned long job;		/* sequence number of the current job */
	wait_queue_head_t start, done;
} lx_pool;

static bool lx_pool_owned(void)
{
	return atomic_read(&lx_pool.busy) && READ_ONCE(lx_pool.owner) == current;
}

static bool __maybe_unused lx_pool_owner_in_task(void)
{
	return lx_pool.owner_in_task;
}

static bool __maybe_unused lx_is_worker(void)
{
	int i;

	for (i = 0; i < lx_pool.n; i++)
		if (lx_pool.task[i] == current)
			return true;
	return false;
}

/* Takes the next task of job @job (of @n tasks) into @i; false when none is left for it. */
static bool lx_pool_claim(u32 job, size_t n, size_t *i)
{
	s64 v = atomic64_read(&lx_pool.claim);

	for (;;) {
		if ((u32)((u64)v >> 32) != job || (u32)v >= n)
			return false;
		if (atomic64_try_cmpxchg(&lx_pool.claim, &v, v + 1)) {
			*i = (u32)v;
			return true;
		}
	}
}

static void lx_pool_task_done(void)
{
	atomic_long_inc(&lx_pool.finished);
	if (wq_has_sleeper(&lx_pool.done))	/* a full barrier, after the increment */
		wake_up(&lx_pool.done);
}

/* A worker's share of job @job: tasks until none is left (none at all once the engine is dead). */
static void lx_pool_work(u32 job)
{
	const void *ctx = READ_ONCE(lx_pool.ctx);
	void (*fn)(const void *ctx, size_t i) = READ_ONCE(lx_pool.fn);
	size_t n = READ_ONCE(lx_pool.n_chunks), i;

	/* The fields may be a later job's: the claim then fails, and they are not used. */
	while (!lx_is_dead() && lx_pool_claim(job, n, &i)) {
		LX_CALL(fn, ctx, i, 0, 0, 0, 0);	/* -ENOTRECOVERABLE if it panicked: still done */
		lx_pool_task_done();
	}
}

/* Owner: no task can be claimed any more; returns how many were. */
static size_t lx_pool_close(void)
{
	s64 v = atomic64_read(&lx_pool.claim);

	for (;;) {
		if ((u32)v == LX_CLAIM_CLOSED)
			return lx_pool.claimed;
		if (atomic64_try_cmpxchg(&lx_pool.claim, &v, (s64)(((u64)v & ~0xffffffffull) | LX_CLAIM_CLOSED))) {
			lx_pool.claimed = min_t(size_t, (u32)v, lx_pool.n_chunks);
			return lx_pool.claimed;
		}
	}
}

/*
 * Owner: whether no task of the job runs any more: all have run, or (the engine dead, nothing
 * more is claimed) those that were claimed have returned, the owner's own escaping one aside.
 */
static bool lx_pool_quiet(void)
{
	long finished = atomic_long_read(&lx_pool.finished);

	if (finished >= (long)lx_pool.n_chunks)
		return true;
	if (!lx_is_dead())
		return false;
	return finished >= (long)lx_pool_close() - (lx_pool.owner_in_task ? 1 : 0);
}

/*
 * Between the operations of a token the pool spins (outside any FPU section, so preemptible) for
 * a short while before it sleeps: operations follow each other within microseconds, and a wake-up
 * through the wait queue costs more than that. As in the userspace pool.
 */
#define LX_SPIN_NS (1000 * NSEC_PER_USEC)

/* Owner, in its FPU section: waits until no task of the job runs, then frees the pool. */
static void lx_pool_finish(void)
{
	u64 spin_end = ktime_get_ns() + LX_SPIN_NS;

	while (!lx_pool_quiet() && !need_resched() && ktime_get_ns() < spin_end)
		cpu_relax();
	if (!lx_pool_quiet()) {
		struct lx_guard *g = lx_fpu_pause();

		wait_event(lx_pool.done, lx_pool_quiet());
		lx_fpu_resume(g);
	}
	lx_pool_close();	/* a worker that looks late finds nothing to take */
	WRITE_ONCE(lx_pool.owner, NULL);
	lx_pool.owner_in_task = false;
	atomic_set_release(&lx_pool.busy, 0);
}

/* The owner panicked inside its job: the job ends with the tasks that were claimed. */
static void lx_pool_abandon(void)
{
	lx_pool_finish();
}

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
			lx_pool_work((u32)seen);
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
	unsigned long job;
	size_t i;

	if (lx_is_dead())
		lx_escape();
	if (need_resched()) {
		struct lx_guard *g = lx_fpu_pause();

		cond_resched();
		lx_fpu_resume(g);
	}
	if (lx_pool.n == 0 || n_chunks < 2 || n_chunks >= LX_CLAIM_CLOSED ||
	    atomic_cmpxchg(&lx_pool.busy, 0, 1) != 0) {
		for (i = 0; i < n_chunks; i++)
			if (LX_CALL(fn, ctx, i, 0, 0, 0, 0) == -ENOTRECOVERABLE && lx_is_dead())
				lx_escape();
		return;
	}
	job = lx_pool.job + 1;
	WRITE_ONCE(lx_pool.owner, current);
	WRITE_ONCE(lx_pool.ctx, ctx);
	WRITE_ONCE(lx_pool.fn, fn);
	WRITE_ONCE(lx_pool.n_chunks, n_chunks);
	atomic_long_set(&lx_pool.finished, 0);
	smp_wmb();	/* the fields before the claim word that opens the job */
	atomic64_set(&lx_pool.claim, (s64)((u64)(u32)job << 32));
	smp_wmb();
	WRITE_ONCE(lx_pool.job, job);
	if (wq_has_sleeper(&lx_pool.start))
		wake_up_all(&lx_pool.start);
	while (!lx_is_dead() && lx_pool_claim((u32)job, n_chunks, &i)) {
		lx_pool.owner_in_task = true;
		LX_CALL(fn, ctx, i, 0, 0, 0, 0);
		lx_pool.owner_in_task = false;
		lx_pool_task_done();
	}
	lx_pool_finish();
	if (lx_is_dead())
		lx_escape();	/* a worker's task panicked: the Rust caller must not go on */
}

/*
 * A scheduling point inside long engine work that makes no parallel operation: tokenizing a
 * prompt (up to LX_MAX_PROMPT bytes) calls this between pieces of at most llamux_core's
 * TICK_WORK steps (or one search of the text for a special token), so preemption is never off
 * for more than one such piece. As at a parallel operation, the FPU section ends for a
 * cond_resched() only when the scheduler wants the CPU.
 */
void llamux_shim_yield(void)
{
	if (lx_is_dead())
		lx_escape();
	if (need_resched()) {
		struct lx_guard *g = lx_fpu_pause();

		cond_resched();
		lx_fpu_resume(g);
	}
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
	atomic64_set(&lx_pool.claim, LX_CLAIM_CLOSED);
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
#define LX_PIECE_MAX (LX_FIFO_SIZE / 2)	/* room for one token's text; a model whose tokens need more is refused */
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
	char *prompt;			/* the prompt written so far (until it starts) */
	size_t prompt_len;
	bool begun;			/* its start was tried (first read, poll or close) */
	u64 kv_bytes;			/* its share of the kv_max_mb bound */
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

/* Bytes of KV cache all sessions may hold together (kv_max_mb), and what they hold. */
static u64 lx_kv_limit;
static atomic64_t lx_kv_bytes = ATOMIC64_INIT(0);
/* The longest text one token can give (the model's longest token, and a UTF-8 carry). */
static u32 lx_piece_max = LX_PIECE_MAX;

static void lx_kv_release(struct lx_file *f)
{
	if (f->kv_bytes)
		atomic64_sub(f->kv_bytes, &lx_kv_bytes);
	f->kv_bytes = 0;
}

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
		/* Refused once the engine is dead: the session's blocks are freed at unload. */
		kernel_fpu_begin();
		LX_CALL(llamux_session_free, f->session, 0, 0, 0, 0, 0);
		kernel_fpu_end();
		f->session = NULL;
	}
	lx_kv_release(f);
	if (error && !f->error)
		f->error = error;
	smp_store_release(&f->done, true);	/* after the error and the last output */
	wake_up_interruptible(&f->readable);
}

/* The engine is dead: every session leaves, its reader getting -EIO. */
static void lx_engine_fail_all(void)
{
	struct lx_file *f, *tmp;

	list_for_each_entry_safe(f, tmp, &lx_eng.active, node)
		lx_retire(f, -EIO);
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
	long ret;

	list_for_each_entry(f, &lx_eng.active, node) {
		if (f->prompting || kfifo_avail(&f->out) < lx_piece_max || n >= max_sessions)
			continue;
		lx_eng.files[n] = f;
		lx_eng.slots[n] = (struct lx_slot){ .session = f->session, .out = f->piece, .out_len = lx_piece_max };
		n++;
	}
	if (n == 0)
		return false;
	t0 = ktime_get();
	kernel_fpu_begin();
	ret = LX_CALL(llamux_decode_step, lx_engine, lx_eng.batch, lx_eng.slots, n, 0, 0);
	kernel_fpu_end();
	if (ret < 0) {	/* the engine panicked in this step: its sessions fail */
		for (i = 0; i < n; i++)
			lx_retire(lx_eng.files[i], -EIO);
		return true;
	}
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
			kfifo_in(&f->out, f->piece, min_t(u32, s->len, lx_piece_max));	/* never cut: len <= out_len */
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
		if (lx_is_dead())
			lx_engine_fail_all();
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

	if (lx_is_dead())
		return ERR_PTR(-ENOTRECOVERABLE);
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
	return stream_open(inode, file);	/* no positions: pread and lseek fail with ESPIPE */
}

/*
 * Under f->lock: starts @f's generation of @text (a kernel buffer) with @cfg, the session
 * timing out after @timeout seconds, and hands it to the engine. 0 or a negative errno.
 */
static int lx_file_start(struct lx_file *f, const struct lx_config *cfg, unsigned int timeout, const char *text,
			 size_t len)
{
	long kv;
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
	/* The session's KV cache, reserved against kv_max_mb before anything is allocated. */
	kernel_fpu_begin();
	kv = LX_CALL(llamux_engine_kv_bytes, lx_engine, cfg->n_ctx, 0, 0, 0, 0);
	kernel_fpu_end();
	if (kv >= 0 && atomic64_add_return(kv, &lx_kv_bytes) > lx_kv_limit) {
		atomic64_sub(kv, &lx_kv_bytes);
		pr_info_ratelimited("llamux: prompt refused: its KV cache (%ld bytes) is over kv_max_mb\n", kv);
		kv = -ENOMEM;
	}
	if (kv < 0) {
		atomic_dec(&lx_live);
		f->rec.outcome = LX_REFUSED;
		lx_audit(&f->rec);
		return (int)kv;
	}
	f->kv_bytes = kv;
	/*
	 * Tokenizing and allocating the session happen here, in the thread that starts the prompt
	 * (its first read, poll or close), in one guarded call that reschedules between bounded
	 * pieces of the tokenizing (llamux_shim_yield) and at every allocation: never one long
	 * preempt-off stretch, whatever the prompt's length.
	 */
	kernel_fpu_begin();
	f->session = (struct lx_session *)lx_call_scoped((const void *)llamux_session_new, (long)lx_engine, (long)cfg,
							 (long)text, (long)len, (long)f->err, sizeof(f->err));
	kernel_fpu_end();
	/*
	 * ERR_PTR(-EINVAL) for a refused prompt, ERR_PTR(-ENOMEM) when memory ran out,
	 * ERR_PTR(-ENOTRECOVERABLE) when the engine is dead.
	 */
	if (IS_ERR_OR_NULL(f->session)) {
		ret = f->session ? PTR_ERR(f->session) : -EINVAL;
		f->session = NULL;
		atomic_dec(&lx_live);
		lx_kv_release(f);
		f->rec.outcome = LX_REFUSED;
		lx_audit(&f->rec);
		if (ret != -ENOTRECOVERABLE)
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

/*
 * A prompt may take several writes: they are appended (LX_MAX_PROMPT bytes in all) until the
 * prompt starts, at the file's first read or poll, or when it is closed unread (the answer is
 * then kept for /proc/llamux/response). Writes after that are refused (-EBUSY).
 */
static ssize_t lx_prompt_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct lx_file *f = file->private_data;
	char *text;
	ssize_t ret = len;

	if (len == 0)
		return 0;
	if (lx_is_dead())
		return -ENOTRECOVERABLE;
	mutex_lock(&f->lock);
	if (f->begun) {
		ret = -EBUSY;	/* one prompt per open file */
	} else if (len > LX_MAX_PROMPT - f->prompt_len) {
		ret = -E2BIG;
	} else {
		text = kvmalloc(f->prompt_len + len, GFP_KERNEL_ACCOUNT);
		if (!text) {
			ret = -ENOMEM;
		} else if (copy_from_user(text + f->prompt_len, buf, len)) {
			kvfree(text);
			ret = -EFAULT;
		} else {
			if (f->prompt_len)
				memcpy(text, f->prompt, f->prompt_len);
			kvfree(f->prompt);
			f->prompt = text;
			f->prompt_len += len;
		}
	}
	mutex_unlock(&f->lock);
	return ret;
}

static bool lx_unloading;

/*
 * Under f->lock: starts the prompt written so far, once (its error, if any, is the file's, which
 * reads then return). Nothing written: -EINVAL and nothing is tried.
 */
static int lx_file_begin(struct lx_file *f)
{
	struct lx_config cfg;
	unsigned int timeout;
	size_t len = f->prompt_len;
	int err;

	if (f->begun)
		return 0;
	if (!f->prompt_len)
		return -EINVAL;
	if (READ_ONCE(lx_unloading))
		return -ESHUTDOWN;	/* closed by the unload: nothing to start */
	f->begun = true;
	/* A trailing newline from `echo` is not part of the prompt. */
	if (f->prompt[len - 1] == '\n')
		len--;
	mutex_lock(&lx_config_lock);
	cfg = lx_cfg;
	timeout = lx_timeout_s;
	mutex_unlock(&lx_config_lock);
	err = lx_file_start(f, &cfg, timeout, f->prompt, len);
	kvfree(f->prompt);
	f->prompt = NULL;
	f->prompt_len = 0;
	if (err) {
		f->error = err;
		smp_store_release(&f->done, true);
	}
	return 0;
}

static ssize_t lx_prompt_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	struct lx_file *f = file->private_data;
	unsigned int copied = 0;
	int ret;

	f->was_read = true;	/* closing it now cancels the generation */
	mutex_lock(&f->lock);
	ret = lx_file_begin(f);
	mutex_unlock(&f->lock);
	if (ret)
		return ret;
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

/*
 * Readable when text is waiting or the generation has ended (a read then returns 0 or the
 * error); writable while the prompt has not started. Polling for input starts the prompt, and
 * counts as reading (closing the file then cancels the generation).
 */
static __poll_t lx_prompt_poll(struct file *file, poll_table *wait)
{
	struct lx_file *f = file->private_data;
	__poll_t mask = 0;

	mutex_lock(&f->lock);
	if (!f->begun && (poll_requested_events(wait) & (EPOLLIN | EPOLLRDNORM)) && f->prompt_len) {
		f->was_read = true;
		lx_file_begin(f);
	}
	if (!f->begun)
		mask |= EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&f->lock);
	poll_wait(file, &f->readable, wait);
	if (f->begun && (!kfifo_is_empty(&f->out) || smp_load_acquire(&f->done)))
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
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
	kvfree(f->prompt);
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

	mutex_lock(&f->lock);
	lx_file_begin(f);	/* a prompt written and never read starts now */
	mutex_unlock(&f->lock);
	if (f->begun && !f->was_read) {
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
	if (!file->private_data)
		return -ENODATA;
	return stream_open(inode, file);
}

static int lx_response_release(struct inode *inode, struct file *file)
{
	lx_file_free(file->private_data);
	return 0;
}

static const struct proc_ops lx_response_ops = {
	.proc_open = lx_response_open,
	.proc_read = lx_prompt_read,
	.proc_poll = lx_prompt_poll,
	.proc_release = lx_response_release,
	.proc_lseek = noop_llseek,
};

static const struct proc_ops lx_prompt_ops = {
	.proc_open = lx_prompt_open,
	.proc_read = lx_prompt_read,
	.proc_write = lx_prompt_write,
	.proc_poll = lx_prompt_poll,
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
	if (lx_is_dead())
		seq_printf(m, "engine_dead: %s\n", lx_dead_why);
	return 0;
}

/*
 * @count per second, times 1000, over @ns nanoseconds. The product count * 10^12 would overflow
 * 64 bits after 9.2 million tokens: it is taken in 128 bits (mul_u64_u64_div_u64), whose
 * quotient must fit 64 bits (divq faults otherwise), so a rate beyond that saturates.
 */
static s64 lx_milli_rate(s64 count, s64 ns)
{
	const u64 scale = 1000ULL * NSEC_PER_SEC;

	if (count <= 0 || ns <= 0)
		return 0;
	if (div64_u64(count, ns) >= div64_u64(S64_MAX, scale) - 1)
		return S64_MAX;
	return mul_u64_u64_div_u64(count, scale, ns);
}

static int lx_stats_show(struct seq_file *m, void *v)
{
	s64 tokens = atomic64_read(&lx_tokens), ns = atomic64_read(&lx_gen_ns);
	s64 ft = atomic64_read(&lx_first_token_count);
	s64 milli_tps = lx_milli_rate(tokens, ns);
	/* Tokens over the time of the engine's decoding steps: all sessions' tokens per second. */
	s64 ens = atomic64_read(&lx_engine_ns);
	s64 milli_agg = lx_milli_rate(tokens, ens);

	seq_printf(m, "requests: %lld\ntokens: %lld\ndecode_us: %lld\ntokens_per_s: %lld.%03lld\n",
		   atomic64_read(&lx_requests), tokens, div64_s64(ns, NSEC_PER_USEC), milli_tps / 1000,
		   milli_tps % 1000);
	seq_printf(m, "first_token_ms: %lld\nlive_sessions: %d\nengine_bytes: %lld\nmodel_bytes: %zu\n",
		   ft ? div64_s64(atomic64_read(&lx_first_token_ns_sum), ft * NSEC_PER_MSEC) : 0,
		   atomic_read(&lx_live), atomic64_read(&lx_alloc_bytes), lx_model_size);
	seq_printf(m, "engine_steps: %lld\nengine_decode_us: %lld\nengine_tokens_per_s: %lld.%03lld\nbatch_max: %lld\n",
		   atomic64_read(&lx_engine_steps), div64_s64(ens, NSEC_PER_USEC), milli_agg / 1000, milli_agg % 1000,
		   atomic64_read(&lx_batch_max));
	seq_printf(m, "kv_bytes: %lld\nkv_limit: %llu\n", atomic64_read(&lx_kv_bytes), lx_kv_limit);
	seq_printf(m, "audit_suppressed: %llu\n", lx_audit_suppressed());
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
	long piece = 0;
	int ret;

	/* llamux_call.S reads the guard at these offsets. */
	BUILD_BUG_ON(offsetof(struct lx_guard, prev) != 64);
	BUILD_BUG_ON(offsetof(struct lx_guard, fn) != 72);
	BUILD_BUG_ON(offsetof(struct lx_guard, a) != 80);
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
	if (!IS_ERR_OR_NULL(lx_engine)) {
		LX_CALL(llamux_engine_info, lx_engine, &lx_n_vocab, &lx_n_ctx_train, &lx_n_layer, 0, 0);
		piece = LX_CALL(llamux_engine_max_piece, lx_engine, 0, 0, 0, 0, 0);
	}
	kernel_fpu_end();
	/* ERR_PTR(-EINVAL) for an unusable model, ERR_PTR(-ENOMEM) when memory ran out. */
	if (IS_ERR_OR_NULL(lx_engine)) {
		ret = lx_engine ? PTR_ERR(lx_engine) : -EINVAL;
		lx_engine = NULL;
		pr_err("llamux: %s is not a usable model: %s\n", model, err);
		goto free_data;
	}
	/* A token's text goes to its reader whole: the FIFO must hold the longest one. */
	if (piece < 0 || piece > LX_PIECE_MAX) {
		pr_err("llamux: %s is not a usable model: a token's text takes %ld bytes, more than %d\n", model,
		       piece, LX_PIECE_MAX);
		ret = -EINVAL;
		goto free_engine;
	}
	lx_piece_max = max_t(u32, piece, 1);
	lx_kv_limit = kv_max_mb ? (u64)kv_max_mb << 20 : ((u64)totalram_pages() << PAGE_SHIFT) / 4;
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
	lx_blocks_reclaim();
	return ret;
}

static void __exit lx_exit(void)
{
	struct lx_file *f, *tmp;
	s64 left;

	WRITE_ONCE(lx_unloading, true);	/* prompt files closed from here on start nothing */
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
	/* Nothing is left unless the engine died (its memory was never freed by Rust). */
	left = lx_blocks_reclaim();
	pr_info("llamux: unloaded (engine memory left: %lld bytes%s)\n", left, left ? ", freed" : "");
}

module_init(lx_init);
module_exit(lx_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Llamux: a language model engine in the kernel");
