/* SPDX-License-Identifier: GPL-2.0 */
/*
 * long llamux_call(struct lx_guard *g)
 *
 * Calls g->fn(g->a[0], ..., g->a[5]) on a 16-byte aligned stack. The kernel keeps its stack only
 * 8-byte aligned, while the Rust engine, like any SysV x86-64 code, may keep vector registers in
 * 16-byte aligned stack slots. Every call from the shim into Rust goes through here.
 *
 * Before the call it records in g what its own return needs: the callee-saved registers, the
 * stack pointer of its caller and the return address. llamux_escape(g, ret) uses them to return
 * from this llamux_call with ret, abandoning every frame above it (the Rust code that panicked).
 * To the C caller that is an ordinary return: the callee-saved registers hold what they held at
 * the call, as the ABI requires, so the caller needs no setjmp-like care (it is not a
 * "returns twice" function: it returns once, either way).
 *
 * struct lx_guard (llamux.h): regs[0..5] rbx rbp r12 r13 r14 r15, regs[6] the caller's stack
 * pointer after the return, regs[7] the return address; then prev, fn, a[6].
 */
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <asm/nospec-branch.h>

#define G_RBX	0
#define G_RBP	8
#define G_R12	16
#define G_R13	24
#define G_R14	32
#define G_R15	40
#define G_RSP	48
#define G_RIP	56
#define G_PREV	64
#define G_FN	72
#define G_A1	80

SYM_FUNC_START(llamux_call)
	push	%rbp
	mov	%rsp, %rbp
	mov	%rbx, G_RBX(%rdi)
	mov	(%rbp), %rax		/* the caller's rbp, pushed above */
	mov	%rax, G_RBP(%rdi)
	mov	%r12, G_R12(%rdi)
	mov	%r13, G_R13(%rdi)
	mov	%r14, G_R14(%rdi)
	mov	%r15, G_R15(%rdi)
	lea	16(%rbp), %rax		/* the caller's stack pointer once this call has returned */
	mov	%rax, G_RSP(%rdi)
	mov	8(%rbp), %rax		/* the return address */
	mov	%rax, G_RIP(%rdi)
	and	$-16, %rsp
	mov	G_FN(%rdi), %rax
	mov	G_A1+40(%rdi), %r9
	mov	G_A1+32(%rdi), %r8
	mov	G_A1+24(%rdi), %rcx
	mov	G_A1+16(%rdi), %rdx
	mov	G_A1+8(%rdi), %rsi
	mov	G_A1(%rdi), %rdi
	CALL_NOSPEC rax
	leave
	RET
SYM_FUNC_END(llamux_call)

/*
 * void llamux_escape(struct lx_guard *g, long ret): returns from the llamux_call that filled g,
 * with ret. Only for a g whose llamux_call is still running on this thread's stack.
 *
 * It returns, rather than jumping to the return address: the stack pointer is put back just
 * below the caller's (the slot where the call put the return address, which it is written to
 * again) and RET returns through it. An indirect jump there would fault on a kernel with
 * indirect branch tracking (CONFIG_X86_KERNEL_IBT), the return address not being an endbr64.
 */
SYM_FUNC_START(llamux_escape)
	mov	%rsi, %rax
	mov	G_RBX(%rdi), %rbx
	mov	G_RBP(%rdi), %rbp
	mov	G_R12(%rdi), %r12
	mov	G_R13(%rdi), %r13
	mov	G_R14(%rdi), %r14
	mov	G_R15(%rdi), %r15
	mov	G_RIP(%rdi), %rcx
	mov	G_RSP(%rdi), %rsp
	sub	$8, %rsp
	mov	%rcx, (%rsp)
	RET
SYM_FUNC_END(llamux_escape)
STACK_FRAME_NON_STANDARD llamux_escape
