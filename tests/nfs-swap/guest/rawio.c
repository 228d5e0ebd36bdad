// SPDX-License-Identifier: GPL-2.0
/*
 * rawio - the raw limit of a path for swap: O_DIRECT writes, then reads,
 * of a file in large blocks, the way swap-out and swap-in reach NFS, with
 * no page cache in between.  Every block carries its index, and the read
 * checks it, so a fast but wrong path is not counted as fast.
 *
 * Usage: rawio write|read|both FILE MB [BLOCK_KB [STREAMS]]
 *   (1024 kB blocks, 1 stream; STREAMS processes share the blocks, each
 *   with one request in flight, as swap-out has several).  "both" reads
 *   FILE (made by "rawio write") while writing FILE.both, STREAMS each
 *   way, as swap-in and swap-out share the link.
 * Output, one line, parsed by the host (bench/):
 *   NST RAWIO op=write|read bytes=B secs=S mb_per_s=R streams=S bad_blocks=N
 *   (op=both: bytes both ways, secs until both ended, and before streams=
 *   write_mb_per_s=W read_mb_per_s=R, each way until its own end)
 * Exit: 0 done, 1 blocks read back wrong, 2 error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

/* One stream's share: blocks STREAM, STREAM + STREAMS, ...; 0 done, 2 error */
static int pass(int writing, const char *file, unsigned long blocks,
		unsigned long block, unsigned long streams, unsigned long stream,
		unsigned long *bad)
{
	uint64_t *buf;
	int fd;

	if (posix_memalign((void **)&buf, 4096, block))
		return fail("allocate a block for", file);
	memset(buf, 0xa5, block);
	fd = open(file, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0)
		return fail("open", file);
	for (unsigned long i = stream; i < blocks; i += streams) {
		off_t pos = (off_t)i * block;
		ssize_t n;

		if (writing) {
			buf[0] = i;
			n = pwrite(fd, buf, block, pos);
		} else {
			n = pread(fd, buf, block, pos);
			if (n == (ssize_t)block && buf[0] != i)
				__atomic_add_fetch(bad, 1, __ATOMIC_RELAXED);
		}
		if (n != (ssize_t)block) {
			if (n >= 0)
				errno = EIO;
			return fail(writing ? "write" : "read", file);
		}
	}
	if (writing && fsync(fd))
		return fail("fsync", file);
	close(fd);
	return 0;
}

/* Start one way's STREAMS processes; their pids in PIDS */
static int start(int writing, const char *file, unsigned long blocks,
		 unsigned long block, unsigned long streams, unsigned long *bad,
		 pid_t *pids)
{
	int fd;

	if (writing) {
		fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return fail("create", file);
		close(fd);
	}
	for (unsigned long s = 0; s < streams; s++) {
		pids[s] = fork();
		if (pids[s] < 0)
			return fail("fork a stream for", file);
		if (!pids[s])
			_exit(pass(writing, file, blocks, block, streams, s, bad));
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long mb, block, blocks, streams, *bad;
	int writing, both, status, err = 0;
	pid_t pids[2][64] = { { 0 } }, pid;
	double t0, end[2] = { 0, 0 }, secs;
	char both_file[4096];

	if (argc < 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "read") &&
			 strcmp(argv[1], "both"))) {
		fprintf(stderr, "usage: rawio write|read|both FILE MB [BLOCK_KB [STREAMS]]\n");
		return 2;
	}
	writing = !strcmp(argv[1], "write");
	both = !strcmp(argv[1], "both");
	if (snprintf(both_file, sizeof(both_file), "%s.both", argv[2]) >=
	    (int)sizeof(both_file)) {
		fprintf(stderr, "rawio: file name too long: %s\n", argv[2]);
		return 2;
	}
	mb = strtoul(argv[3], NULL, 10);
	block = (argc > 4 ? strtoul(argv[4], NULL, 10) : 1024) << 10;
	streams = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
	if (!mb || block < 4096 || block % 4096 || (mb << 20) % block ||
	    !streams || streams > 64) {
		fprintf(stderr, "rawio: MB and BLOCK_KB must be positive, BLOCK_KB a multiple of 4 dividing MB, STREAMS 1 to 64\n");
		return 2;
	}
	blocks = (mb << 20) / block;
	bad = mmap(NULL, sizeof(*bad), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (bad == MAP_FAILED)
		return fail("map a counter for", argv[2]);
	t0 = now();
	/* pids[1]: the writers, pids[0]: the readers */
	if (start(writing || both, both ? both_file : argv[2], blocks, block,
		  streams, bad, pids[writing || both]) ||
	    (both && start(0, argv[2], blocks, block, streams, bad, pids[0])))
		err = 1;
	while ((pid = wait(&status)) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			err = 1;
		for (int w = 0; w < 2; w++)
			for (unsigned long s = 0; s < streams; s++)
				if (pids[w][s] == pid)
					end[w] = now() - t0;
	}
	secs = now() - t0;
	if (err)
		return 2;	/* the stream said why */
	if (both)
		printf("NST RAWIO op=both bytes=%lu secs=%.3f mb_per_s=%.2f write_mb_per_s=%.2f read_mb_per_s=%.2f streams=%lu bad_blocks=%lu\n",
		       mb << 21, secs, 2 * mb / secs, mb / end[1], mb / end[0],
		       streams, *bad);
	else
		printf("NST RAWIO op=%s bytes=%lu secs=%.3f mb_per_s=%.2f streams=%lu bad_blocks=%lu\n",
		       argv[1], mb << 20, secs, mb / secs, streams, *bad);
	return *bad ? 1 : 0;
}
