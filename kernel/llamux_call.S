/* SPDX-License-Identifier: GPL-2.0 */
/*
 * long llamux_call(void *fn, long a1, long a2, long a3, long a4, long a5, long a6)
 *
 * Calls fn(a1, ..., a6) on a 16-byte aligned stack. The kernel keeps its stack only 8-byte
 * aligned, while the Rust engine, like any SysV x86-64 code, may keep vector registers in
 * 16-byte aligned stack slots. Every call from the shim into Rust goes through here.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>

SYM_FUNC_START(llamux_call)
	push	%rbp
	mov	%rsp, %rbp
	and	$-16, %rsp
	mov	%rdi, %rax
	mov	%rsi, %rdi
	mov	%rdx, %rsi
	mov	%rcx, %rdx
	mov	%r8, %rcx
	mov	%r9, %r8
	mov	16(%rbp), %r9
	CALL_NOSPEC rax
	leave
	RET
SYM_FUNC_END(llamux_call)
