// SPDX-License-Identifier: GPL-2.0
/*
 * lxpoll PROMPT: asks llamux.ko for PROMPT the way an event loop would, and checks the prompt
 * file's poll and stream semantics on the way: before the prompt starts the file polls
 * writable only; positioned reads fail (ESPIPE); the prompt goes in several small writes; the
 * answer is read only when poll says it is readable; once the prompt has started, the file is no
 * longer writable and a write fails (EBUSY). Prints the answer on stdout; exits 1 on the first
 * check that fails, saying which. Built static for the VM test (kernel/vm/init.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "lxpoll: %s (errno %d: %s)\n", what, errno, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct pollfd p;
	char buf[4096];
	size_t len, off;
	int fd, polls = 0;
	ssize_t n;

	if (argc != 2)
		return fail("usage: lxpoll PROMPT");
	fd = open("/proc/llamux/prompt", O_RDWR);
	if (fd < 0)
		return fail("open /proc/llamux/prompt");
	p = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	if (poll(&p, 1, 0) != 1 || p.revents != POLLOUT)
		return fail("nothing written: the file must poll writable only");
	errno = 0;
	if (pread(fd, buf, 1, 0) != -1 || errno != ESPIPE)
		return fail("pread must fail with ESPIPE");
	len = strlen(argv[1]);
	for (off = 0; off < len; off += 3) {
		size_t k = len - off < 3 ? len - off : 3;

		if (write(fd, argv[1] + off, k) != (ssize_t)k)
			return fail("a piece of the prompt was not taken");
	}
	p.events = POLLOUT;
	if (poll(&p, 1, 0) != 1 || p.revents != POLLOUT)
		return fail("prompt written, not started: the file must still poll writable");
	for (;;) {
		p.events = POLLIN;
		if (poll(&p, 1, 600000) != 1 || !(p.revents & POLLIN))
			return fail("no answer became readable within 600 s");
		polls++;
		n = read(fd, buf, sizeof(buf));
		if (n < 0)
			return fail("read after POLLIN");
		if (n == 0)
			break;
		if (fwrite(buf, 1, n, stdout) != (size_t)n)
			return fail("stdout");
	}
	p.events = POLLOUT;
	if (poll(&p, 1, 0) != 0)
		return fail("started: the file must not poll writable");
	errno = 0;
	if (write(fd, "x", 1) != -1 || errno != EBUSY)
		return fail("a write after the start must fail with EBUSY");
	close(fd);
	fflush(stdout);
	fprintf(stderr, "lxpoll: ok: %d polls\n", polls);
	return 0;
}
