// SPDX-License-Identifier: GPL-2.0
/*
 * kprofile - where the guest kernel spends its CPU: the kernel's own tick
 * profiler (boot with profile=SHIFT, CONFIG_PROFILING; /proc/profile
 * counts the timer ticks that found a CPU in kernel text, per 2^SHIFT
 * bytes), added up per function with /proc/kallsyms, in the guest, so
 * that the host needs no System.map of the kernel it booted.
 *
 * Usage: kprofile reset         zero the counters (before a workload)
 *        kprofile top N LABEL   the N functions with the most ticks
 * Output of top, parsed by the host (bench/report):
 *   NST KPROFILE label=L ticks=T shift=S functions=F
 *   NST KPROF label=L rank=R fn=NAME ticks=T pct=P     (N lines)
 * Ticks that fall outside every function are counted as fn=?.
 * Exit: 0 done, 2 error (no /proc/profile: boot without profile=).
 * KPROFILE_ROOT, if set, is put before both /proc paths (the host's
 * test of this program, case 003, gives it made-up files).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sym {
	unsigned long addr;
	char name[64];
	unsigned long ticks;
};

static char path[4096];

static const char *at(const char *proc_path)
{
	const char *root = getenv("KPROFILE_ROOT");

	snprintf(path, sizeof(path), "%s%s", root ? root : "", proc_path);
	return path;
}

static int fail(const char *what)
{
	fprintf(stderr, "kprofile: %s: %s\n", what,
		errno ? strerror(errno) : "bad data");
	return 2;
}

static int by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int by_ticks(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->ticks > y->ticks ? -1 : x->ticks < y->ticks;
}

/* The kernel's text symbols, sorted by address; *stext: _stext's */
static struct sym *text_symbols(size_t *nr, unsigned long *stext)
{
	FILE *f = fopen(at("/proc/kallsyms"), "r");
	struct sym *syms = NULL;
	size_t n = 0, cap = 0;
	char line[256], type, name[64];
	unsigned long addr;

	*stext = 0;
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %63s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T' && type != 'W' && type != 'w')
			continue;
		if (!strcmp(name, "_stext")) {	/* a mark, not a function */
			*stext = addr;
			continue;
		}
		if (n == cap) {
			struct sym *more;

			cap = cap ? 2 * cap : 4096;
			more = realloc(syms, cap * sizeof(*syms));
			if (!more) {
				free(syms);
				fclose(f);
				return NULL;
			}
			syms = more;
		}
		syms[n].addr = addr;
		memcpy(syms[n].name, name, sizeof(name));	/* %63s: ends in NUL */
		syms[n].ticks = 0;
		n++;
	}
	fclose(f);
	qsort(syms, n, sizeof(*syms), by_addr);
	*nr = n;
	return syms;
}

static int top(long want, const char *label)
{
	unsigned long stext, step, total = 0, outside = 0, used = 0;
	size_t nr, len = 0, cap = 1 << 20, j = 0;
	unsigned int *buf = malloc(cap);
	struct sym *syms;
	ssize_t got;
	int fd;

	errno = 0;
	if (!buf)
		return fail("allocate");
	fd = open(at("/proc/profile"), O_RDONLY);
	if (fd < 0)
		return fail("open /proc/profile (boot with profile=SHIFT)");
	while ((got = read(fd, (char *)buf + len, cap - len)) > 0) {
		len += got;
		if (len == cap) {
			unsigned int *more = realloc(buf, cap *= 2);

			if (!more)
				return fail("allocate");
			buf = more;
		}
	}
	close(fd);
	if (got < 0 || len < 2 * sizeof(*buf))
		return fail("read /proc/profile");
	step = buf[0];	/* bytes of text per counter, 1 << SHIFT */
	syms = text_symbols(&nr, &stext);
	if (!syms || !nr || !stext || !step)
		return fail("read /proc/kallsyms");
	/* counter i covers _stext + i * step; symbols and counters ascend */
	for (size_t i = 1; i < len / sizeof(*buf); i++) {
		unsigned long pc = stext + (i - 1) * step;

		if (!buf[i])
			continue;
		total += buf[i];
		while (j + 1 < nr && syms[j + 1].addr <= pc)
			j++;
		if (syms[j].addr <= pc)
			syms[j].ticks += buf[i];
		else
			outside += buf[i];
	}
	for (size_t i = 0; i < nr; i++)
		used += syms[i].ticks > 0;
	qsort(syms, nr, sizeof(*syms), by_ticks);
	printf("NST KPROFILE label=%s ticks=%lu shift=%d functions=%lu\n",
	       label, total, __builtin_ctzl(step), used);
	for (long r = 0; r < want && r < (long)nr && syms[r].ticks; r++)
		printf("NST KPROF label=%s rank=%ld fn=%s ticks=%lu pct=%.2f\n",
		       label, r + 1, syms[r].name, syms[r].ticks,
		       100.0 * syms[r].ticks / total);
	if (outside)
		printf("NST KPROF label=%s rank=0 fn=? ticks=%lu pct=%.2f\n",
		       label, outside, 100.0 * outside / total);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "reset")) {
		int fd = open(at("/proc/profile"), O_WRONLY);

		if (fd < 0 || write(fd, "0", 1) != 1)
			return fail("reset /proc/profile (boot with profile=SHIFT)");
		close(fd);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "top") && atol(argv[2]) > 0)
		return top(atol(argv[2]), argv[3]);
	fprintf(stderr, "usage: kprofile reset | kprofile top N LABEL\n");
	return 2;
}
