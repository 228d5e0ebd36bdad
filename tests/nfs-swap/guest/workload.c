// SPDX-License-Identifier: GPL-2.0
/*
 * workload - the swap workload of "Swap-over-NBD without deadlocking":
 * N processes each map anonymous memory, together a multiple of RAM,
 * stamp every page with (process, page, generation) and then pass over
 * all pages several times, verifying every stamp and writing the next
 * generation.  Any page that does not hold what was last written to it
 * is corrupt: the run fails with the count.
 *
 * Output, one line each, parsed by the host (tests/nfs-swap/harness):
 *   NST PROGRESS pid=PID t=SECONDS pass=P/N done=PAGES corrupt=C pswpin=I
 *                pswpout=O
 *   NST WORKLOAD ready                         (with -r, after stamping)
 *   NST WORKLOAD result=ok|corrupt|error procs= pages= passes= verified=
 *                corrupt= elapsed= pswpin= pswpout=
 *   NST LATENCY majflt=F samples=S p50_us= p99_us= max_us=
 * The latency line is of major faults: every LAT_EVERY-th page of a pass
 * is read between two getrusage() calls, and when the major fault count
 * moved, the time of that read goes into a histogram (LAT_SUB buckets per
 * power of two, so a percentile is good to 1/LAT_SUB of an octave).
 * With -s MS the parent sends every process SIGUSR1 (caught, SA_RESTART)
 * every MS milliseconds: a process that swaps out in direct reclaim then
 * often has a signal pending when its send to the swap device's socket
 * must wait, and the send is cut short (NBD's partial send).  It prints
 *   NST WORKLOAD signals=SENT
 * before the result line.
 * Exit: 0 all pages verified, 1 corrupt pages, 2 error (a process died,
 * bad arguments).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define STAMPS		8		/* words stamped per page */
#define STRIDE		(PAGE / sizeof(uint64_t) / STAMPS)
#define MAXPROCS	1024
#define LAT_EVERY	8		/* sample one page in this many */
#define LAT_SUB		8		/* histogram buckets per octave */
#define LAT_BUCKETS	(40 * LAT_SUB)	/* up to 2^40 ns */

struct shared {
	volatile int go;		/* hold mode: parent releases children */
	volatile int stop;
	struct {
		volatile uint64_t done;	/* pages processed (stamped or checked) */
		volatile uint64_t verified;
		volatile uint64_t corrupt;
		volatile int pass;
		volatile int stamped;
	} proc[MAXPROCS];
	uint64_t lat[LAT_BUCKETS];	/* major-fault read times, ns */
	uint64_t lat_max;
};

static struct shared *sh;
static int nprocs, npasses = 3, random_order, interval = 5, inject, barrier;
static int signal_ms;		/* -s: signal every process this often */
static unsigned long pages_per_proc;
static const char *ready_file, *go_file;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("workload: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	printf("NST WORKLOAD result=error\n");
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long vmstat(const char *key)
{
	char name[64];
	unsigned long val, ret = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fscanf(f, "%63s %lu", name, &val) == 2)
		if (!strcmp(name, key)) {
			ret = val;
			break;
		}
	fclose(f);
	return ret;
}

static unsigned long mem_total_kb(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		die("cannot read /proc/meminfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The value word i of a page must hold: never 0, differs per field. */
static uint64_t stamp(unsigned int proc, unsigned long page, unsigned int gen,
		      unsigned int i)
{
	uint64_t x = ((uint64_t)proc << 48) ^ ((uint64_t)page << 16) ^
		     ((uint64_t)gen << 4) ^ i;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x | 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static long majflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_majflt;
}

/* Bucket of ns: octave o = log2(ns) and LAT_SUB steps within it. */
static unsigned int lat_bucket(uint64_t ns)
{
	unsigned int o, b;

	if (ns < LAT_SUB)
		return ns;
	o = 63 - __builtin_clzll(ns);
	b = o * LAT_SUB + ((ns >> (o - 3)) & (LAT_SUB - 1));
	return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

/* The upper bound of bucket b, in ns (for percentiles). */
static double lat_upper(unsigned int b)
{
	unsigned int o = b / LAT_SUB, sub = b % LAT_SUB;

	if (b < LAT_SUB)
		return b + 1;
	return (double)(LAT_SUB + sub + 1) * (1ULL << o) / LAT_SUB;
}

static void lat_record(uint64_t ns)
{
	uint64_t max = __atomic_load_n(&sh->lat_max, __ATOMIC_RELAXED);

	__atomic_fetch_add(&sh->lat[lat_bucket(ns)], 1, __ATOMIC_RELAXED);
	while (ns > max &&
	       !__atomic_compare_exchange_n(&sh->lat_max, &max, ns, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* The p-th percentile of the recorded times, in microseconds. */
static double lat_percentile(double p, uint64_t samples)
{
	uint64_t want = samples * p / 100, seen = 0;

	for (unsigned int b = 0; b < LAT_BUCKETS; b++) {
		seen += sh->lat[b];
		if (seen > want)
			return lat_upper(b) / 1000;
	}
	return 0;
}

static void write_page(uint64_t *p, unsigned int proc, unsigned long page,
		       unsigned int gen)
{
	for (unsigned int i = 0; i < STAMPS; i++)
		p[i * STRIDE] = stamp(proc, page, gen, i);
}

static int check_page(const uint64_t *p, unsigned int proc, unsigned long page,
		      unsigned int gen)
{
	for (unsigned int i = 0; i < STAMPS; i++)
		if (p[i * STRIDE] != stamp(proc, page, gen, i))
			return 0;
	return 1;
}

static void report_corrupt(const uint64_t *p, unsigned int proc,
			   unsigned long page, unsigned int gen)
{
	unsigned int i = 0;

	while (i < STAMPS - 1 && p[i * STRIDE] == stamp(proc, page, gen, i))
		i++;
	fprintf(stderr,
		"workload: CORRUPT process %u page %lu generation %u: "
		"word %u is %016llx, want %016llx\n", proc, page, gen, i, (unsigned long long)p[i * STRIDE],
		(unsigned long long)stamp(proc, page, gen, i));
}

/* Page visited at step k of a pass: linear, or a permutation of all pages. */
static unsigned long order(unsigned long k, unsigned long n, unsigned long mul)
{
	return random_order ? (k * mul + 7919) % n : k;
}

static unsigned long gcd(unsigned long a, unsigned long b)
{
	while (b) {
		unsigned long t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void child(unsigned int me)
{
	unsigned long n = pages_per_proc, mul, reported = 0;
	char *mem;

	mem = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "workload: process %u: mmap %lu MB: %s\n",
			me, n * PAGE >> 20, strerror(errno));
		_exit(2);
	}
	/* A multiplier coprime with n, different per process. */
	mul = (n / 2 + 1 + me * 2654435761UL) % n;
	while (mul < 2 || gcd(mul, n) != 1)
		mul = (mul + 1) % n;

	for (unsigned long k = 0; k < n; k++) {
		unsigned long pg = order(k, n, mul);

		write_page((uint64_t *)(mem + pg * PAGE), me, pg, 1);
		sh->proc[me].done++;
	}
	if (inject && me == 0)	/* -C: the checker must catch a lost write */
		((uint64_t *)mem)[STRIDE * 3] ^= 1ULL << 20;
	sh->proc[me].stamped = 1;
	while (!sh->go)
		usleep(100000);

	for (int pass = 1; pass <= npasses && !sh->stop; pass++) {
		sh->proc[me].pass = pass;
		for (unsigned long k = 0; k < n; k++) {
			unsigned long pg = order(k, n, mul);
			uint64_t *p = (uint64_t *)(mem + pg * PAGE);
			int ok;

			if (k % LAT_EVERY == 0) {
				long f0 = majflt();
				uint64_t t0 = now_ns();

				ok = check_page(p, me, pg, pass);
				t0 = now_ns() - t0;
				if (majflt() != f0)
					lat_record(t0);
			} else {
				ok = check_page(p, me, pg, pass);
			}
			if (ok) {
				sh->proc[me].verified++;
			} else {
				sh->proc[me].corrupt++;
				if (reported++ < 5)
					report_corrupt(p, me, pg, pass);
			}
			if (pass < npasses)
				write_page(p, me, pg, pass + 1);
			sh->proc[me].done++;
		}
	}
	_exit(0);
}

static void totals(uint64_t *done, uint64_t *verified, uint64_t *corrupt,
		   int *pass, int *stamped)
{
	*done = *verified = *corrupt = 0;
	*pass = npasses;
	*stamped = 1;
	for (int i = 0; i < nprocs; i++) {
		*done += sh->proc[i].done;
		*verified += sh->proc[i].verified;
		*corrupt += sh->proc[i].corrupt;
		if (sh->proc[i].pass < *pass)
			*pass = sh->proc[i].pass;
		if (!sh->proc[i].stamped)
			*stamped = 0;
	}
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/* -s: from here on every child catches SIGUSR1 and goes on. */
static void catch_sigusr1(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction: %s", strerror(errno));
}

static void usage(void)
{
	fprintf(stderr,
		"usage: workload [-p procs] [-m total_MB | -x ram_multiple] [-n passes]\n"
		"                [-a linear|random] [-i progress_seconds]\n"
		"                [-r ready_file -g go_file] [-b] [-C] [-s signal_ms]\n"
		"  defaults: 8 processes per CPU, 4 x RAM, 3 passes, linear, 5 s\n"
		"  -r/-g: after stamping, create ready_file and wait for go_file\n"
		"  -b: no process starts its passes before all have stamped (else an\n"
		"      early process may finish before a late one has its memory)\n"
		"  -C: corrupt one page on purpose (self-test of the checker)\n"
		"  -s: send every process SIGUSR1 (caught) every signal_ms ms\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long total_mb = 0, in0, out0;
	double ram_multiple = 4.0, t0, last = 0;
	uint64_t done, verified, corrupt, signals = 0;
	int opt, pass, stamped, failed = 0, alive;
	pid_t pids[MAXPROCS];

	setvbuf(stdout, NULL, _IOLBF, 0);
	nprocs = 8 * sysconf(_SC_NPROCESSORS_ONLN);
	while ((opt = getopt(argc, argv, "p:m:x:n:a:i:r:g:bCs:")) != -1) {
		switch (opt) {
		case 'p':
			nprocs = atoi(optarg);
			break;
		case 'm':
			total_mb = strtoul(optarg, NULL, 10);
			break;
		case 'x':
			ram_multiple = atof(optarg);
			break;
		case 'n':
			npasses = atoi(optarg);
			break;
		case 'a':
			if (!strcmp(optarg, "random"))
				random_order = 1;
			else if (strcmp(optarg, "linear"))
				usage();
			break;
		case 'i':
			interval = atoi(optarg);
			break;
		case 'r':
			ready_file = optarg;
			break;
		case 'g':
			go_file = optarg;
			break;
		case 'b':
			barrier = 1;
			break;
		case 'C':
			inject = 1;
			break;
		case 's':
			signal_ms = atoi(optarg);
			if (signal_ms < 1)
				usage();
			break;
		default:
			usage();
		}
	}
	if (nprocs < 1 || nprocs > MAXPROCS || npasses < 1 || interval < 1 ||
	    !!ready_file != !!go_file)
		usage();
	if (!total_mb)
		total_mb = mem_total_kb() * ram_multiple / 1024;
	pages_per_proc = (total_mb << 20) / PAGE / nprocs;
	if (pages_per_proc < 2)
		die("%lu MB is too little for %d processes", total_mb, nprocs);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap shared: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	sh->go = !ready_file && !barrier;
	/* The parent reports progress: keep it resident. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		fprintf(stderr, "workload: mlockall: %s (continuing)\n",
			strerror(errno));

	printf("NST WORKLOAD start procs=%d pages_per_proc=%lu total_mb=%lu "
	       "passes=%d order=%s\n", nprocs, pages_per_proc, pages_per_proc * nprocs * PAGE >> 20,
	       npasses, random_order ? "random" : "linear");
	in0 = vmstat("pswpin");
	out0 = vmstat("pswpout");
	if (signal_ms)
		catch_sigusr1();
	t0 = now();
	for (int i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (!pids[i]) {
			munlockall();
			child(i);
		}
	}

	alive = nprocs;
	while (alive) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			alive--;
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				for (int i = 0; i < nprocs; i++)
					if (pids[i] == pid)
						fprintf(stderr, "workload: process %d %s %d\n", i,
							WIFSIGNALED(status) ? "killed by signal" : "exited with",
							WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
				failed = 1;
				sh->stop = 1;
			}
			continue;
		}
		if (pid < 0)
			die("waitpid: %s", strerror(errno));
		totals(&done, &verified, &corrupt, &pass, &stamped);
		if (stamped && !sh->go && !ready_file) {
			/* -b: every page is stamped, none checked yet */
			sh->go = 1;
			printf("NST WORKLOAD barrier done=%llu\n",
			       (unsigned long long)done);
		}
		if (stamped && !sh->go && ready_file) {
			FILE *f;

			if (access(ready_file, F_OK)) {
				f = fopen(ready_file, "w");
				if (!f)
					die("cannot create %s: %s", ready_file, strerror(errno));
				fclose(f);
				printf("NST WORKLOAD ready\n");
			}
			if (!access(go_file, F_OK))
				sh->go = 1;
		}
		if (now() - last >= interval) {
			last = now();
			printf("NST PROGRESS pid=%d t=%.1f pass=%d/%d done=%llu "
			       "corrupt=%llu pswpin=%lu pswpout=%lu\n",
			       (int)getpid(), last - t0, stamped ? pass : 0, npasses,
			       (unsigned long long)done, (unsigned long long)corrupt,
			       vmstat("pswpin") - in0, vmstat("pswpout") - out0);
		}
		if (!signal_ms) {
			usleep(100000);
			continue;
		}
		usleep(signal_ms * 1000);
		for (int i = 0; i < nprocs; i++)
			if (!kill(pids[i], SIGUSR1))
				signals++;
	}

	totals(&done, &verified, &corrupt, &pass, &stamped);
	if (signal_ms)
		printf("NST WORKLOAD signals=%llu\n", (unsigned long long)signals);
	printf("NST WORKLOAD result=%s procs=%d pages=%lu passes=%d "
	       "verified=%llu corrupt=%llu elapsed=%.1f pswpin=%lu pswpout=%lu\n",
	       failed ? "error" : corrupt ? "corrupt" : "ok", nprocs,
	       pages_per_proc * nprocs, npasses,
	       (unsigned long long)verified, (unsigned long long)corrupt,
	       now() - t0, vmstat("pswpin") - in0, vmstat("pswpout") - out0);
	{
		struct rusage ru;
		uint64_t samples = 0;

		getrusage(RUSAGE_CHILDREN, &ru);
		for (int b = 0; b < LAT_BUCKETS; b++)
			samples += sh->lat[b];
		printf("NST LATENCY majflt=%ld samples=%llu p50_us=%.1f "
		       "p99_us=%.1f max_us=%.1f\n", ru.ru_majflt,
		       (unsigned long long)samples,
		       lat_percentile(50, samples), lat_percentile(99, samples),
		       sh->lat_max / 1000.0);
	}
	if (failed)
		return 2;
	if (corrupt || verified != pages_per_proc * nprocs * npasses)
		return 1;
	return 0;
}
