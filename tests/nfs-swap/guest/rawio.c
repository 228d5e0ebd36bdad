// SPDX-License-Identifier: GPL-2.0
/*
 * rawio - the raw limit of a path for swap: O_DIRECT writes, then reads,
 * of a file in large blocks, the way swap-out and swap-in reach NFS, with
 * no page cache in between.  Every block carries its index, and the read
 * checks it, so a fast but wrong path is not counted as fast.
 *
 * Usage: rawio write|read FILE MB [BLOCK_KB]       (1024 kB blocks)
 * Output, one line, parsed by the host (bench/):
 *   NST RAWIO op=write|read bytes=B secs=S mb_per_s=R bad_blocks=N
 * Exit: 0 done, 1 blocks read back wrong, 2 error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *file)
{
	fprintf(stderr, "rawio: %s %s: %s\n", what, file, strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long mb, block, blocks, bad = 0;
	int writing, fd;
	uint64_t *buf;
	double t0, secs;

	if (argc < 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "read"))) {
		fprintf(stderr, "usage: rawio write|read FILE MB [BLOCK_KB]\n");
		return 2;
	}
	writing = !strcmp(argv[1], "write");
	mb = strtoul(argv[3], NULL, 10);
	block = (argc > 4 ? strtoul(argv[4], NULL, 10) : 1024) << 10;
	if (!mb || block < 4096 || block % 4096 || (mb << 20) % block) {
		fprintf(stderr, "rawio: MB and BLOCK_KB must be positive, BLOCK_KB a multiple of 4 dividing MB\n");
		return 2;
	}
	blocks = (mb << 20) / block;
	if (posix_memalign((void **)&buf, 4096, block))
		return fail("allocate a block for", argv[2]);
	memset(buf, 0xa5, block);

	fd = open(argv[2], writing ? O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT :
		  O_RDONLY | O_DIRECT, 0600);
	if (fd < 0)
		return fail("open", argv[2]);
	t0 = now();
	for (unsigned long i = 0; i < blocks; i++) {
		ssize_t n;

		if (writing) {
			buf[0] = i;
			n = write(fd, buf, block);
		} else {
			n = read(fd, buf, block);
			if (n == (ssize_t)block && buf[0] != i)
				bad++;
		}
		if (n != (ssize_t)block) {
			if (n >= 0)
				errno = EIO;
			return fail(writing ? "write" : "read", argv[2]);
		}
	}
	if (writing && fsync(fd))
		return fail("fsync", argv[2]);
	secs = now() - t0;
	close(fd);
	printf("NST RAWIO op=%s bytes=%lu secs=%.3f mb_per_s=%.2f bad_blocks=%lu\n",
	       argv[1], mb << 20, secs, mb / secs, bad);
	return bad ? 1 : 0;
}
