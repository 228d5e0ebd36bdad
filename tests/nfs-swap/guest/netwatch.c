// SPDX-License-Identifier: GPL-2.0
/*
 * netwatch - what the network and free memory do while a swap workload
 * runs, so that a lockup's log says whether the guest still sent and
 * received, and what its swap connection to the host was waiting for.
 *
 * Usage: netwatch [SECONDS]     (every 10 s; runs until killed)
 * One line per sample:
 *   NST WATCH t=UPTIME free_kb=N eth0_rx=N eth0_rx_drop=N eth0_tx=N
 *     eth0_tx_drop=N arp=FLAGS tcp_in=N tcp_out=N tcp_retrans=N
 *     sock=RPORT:ST:TXQ:RXQ:TIMER:WHEN:RETR:PROBES:RTO:CWND ...
 *   NST WATCH t=UPTIME tcpext PFMemallocDrop=N TCPMemoryPressures=N ...
 * (counters are totals since boot; one sock= per TCP socket to the host,
 * 10.0.2.2 or over IPv6 fec0::2 (tests/nfs-swap/guest/nst.sh): remote
 * port, state, bytes unacked and unread, timer kind
 * (0 none, 1 retransmit or loss probe, 2 keepalive, 4 zero-window
 * probe) and the time it has left, retransmits, probes sent, RTO and
 * cwnd; times in USER_HZ ticks, 1/100 s).
 *
 * It must keep reporting when memory is gone: it locks itself in memory
 * and opens its /proc files once, so that a sample reuses their buffers;
 * only /proc/net/netstat allocates (~1 kB, GFP_KERNEL) on each read, so
 * a second process of its own prints its counters (the tcpext lines):
 * when that one stalls in reclaim, the first goes on.  arp= is the flags
 * of the neighbour entry for 10.0.2.2 (0x2 resolved).  A WATCH line is
 * not progress: the host's lockup detector ignores it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static char buf[65536], line[4096];

enum { MEMINFO, SNMP, NETSTAT, DEV, TCP, TCP6, ARP, NFILES };
static const char *const files[NFILES] = {
	"/proc/meminfo", "/proc/net/snmp", "/proc/net/netstat",
	"/proc/net/dev", "/proc/net/tcp", "/proc/net/tcp6", "/proc/net/arp",
};
static int fds[NFILES];

/* TcpExt counters that say why a TCP socket stopped moving */
static const char *const tcpext[] = {
	"PFMemallocDrop", "TCPMemoryPressures", "TCPBacklogDrop",
	"TCPRcvQDrop", "TCPTimeouts", "TCPToZeroWindowAdv",
	"TCPFromZeroWindowAdv", "TCPWantZeroWindowAdv", NULL,
};

static const char *slurp(int i)
{
	ssize_t n = -1;

	if (fds[i] >= 0 && lseek(fds[i], 0, SEEK_SET) == 0)
		n = read(fds[i], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* append to line[] at len; what does not fit is left out whole */
static size_t add(size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0 || len + n >= sizeof(line)) {
		line[len] = '\0';
		return len;
	}
	return len + n;
}

/*
 * /proc/net/snmp and /proc/net/netstat: "Prefix:" and the counters'
 * names on one line, "Prefix:" and their values on the next.  Add
 * " label=value" for each wanted name.
 */
static size_t pairs(size_t len, const char *text, const char *prefix,
		    const char *const *names, const char *const *labels)
{
	const char *hdr = strstr(text, prefix), *val;
	char *n, *v, *ns, *vs, hcopy[4096], vcopy[4096];
	size_t plen = strlen(prefix);
	int i;

	if (!hdr)
		return len;
	val = strstr(hdr + plen, prefix);
	if (!val)
		return len;
	snprintf(hcopy, sizeof(hcopy), "%.*s", (int)strcspn(hdr, "\n"), hdr);
	snprintf(vcopy, sizeof(vcopy), "%.*s", (int)strcspn(val, "\n"), val);
	n = strtok_r(hcopy + plen, " ", &ns);
	v = strtok_r(vcopy + plen, " ", &vs);
	for (; n && v; n = strtok_r(NULL, " ", &ns), v = strtok_r(NULL, " ", &vs))
		for (i = 0; names[i]; i++)
			if (!strcmp(n, names[i]))
				len = add(len, " %s=%s", labels ? labels[i] : n, v);
	return len;
}

/*
 * One sock= for each socket in /proc/net/tcp or tcp6 (file) whose remote
 * address is host, as that file prints it (32-bit words in host order).
 */
static size_t socks(size_t len, int file, const char *host)
{
	char rem[33], *p, *save;

	for (p = strtok_r((char *)slurp(file), "\n", &save); p;
	     p = strtok_r(NULL, "\n", &save)) {
		unsigned int st, txq, rxq, tr, retr, port;
		unsigned long when, rto, cwnd;
		int probes;

		/* sl local rem st txq:rxq tr:when retr uid probes inode
		 * refcnt ptr rto ato qp cwnd ssthresh
		 */
		if (sscanf(p, " %*d: %*x:%*x %32[0-9A-F]:%x %x %x:%x %x:%lx %x %*u %d %*u %*d %*s %lu %*u %*u %lu",
			   rem, &port, &st, &txq, &rxq, &tr, &when, &retr,
			   &probes, &rto, &cwnd) != 11 ||
		    strcmp(rem, host))
			continue;
		len = add(len, " sock=%u:%02X:%u:%u:%u:%lu:%u:%d:%lu:%lu",
			  port, st, txq, rxq, tr, when, retr, probes, rto, cwnd);
	}
	return len;
}

static size_t sample(size_t len)
{
	static const char *const tcp[] = { "InSegs", "OutSegs", "RetransSegs", NULL };
	static const char *const tcpl[] = { "tcp_in", "tcp_out", "tcp_retrans", NULL };
	unsigned long rx, rxdrop, tx, txdrop, free_kb;
	unsigned int arpflags;
	const char *s;

	s = strstr(slurp(MEMINFO), "MemFree:");
	if (s && sscanf(s, "MemFree: %lu", &free_kb) == 1)
		len = add(len, " free_kb=%lu", free_kb);
	s = strstr(slurp(DEV), "eth0:");
	/* rx: bytes packets errs drop fifo frame compressed multicast;
	 * tx: bytes packets errs drop ...
	 */
	if (s && sscanf(s, "eth0: %*u %lu %*u %lu %*u %*u %*u %*u %*u %lu %*u %lu",
			&rx, &rxdrop, &tx, &txdrop) == 4)
		len = add(len, " eth0_rx=%lu eth0_rx_drop=%lu eth0_tx=%lu eth0_tx_drop=%lu",
			  rx, rxdrop, tx, txdrop);
	/* the host's neighbour entry: flags 0x2 complete, 0x0 unresolved */
	s = strstr(slurp(ARP), "10.0.2.2 ");
	if (s && sscanf(s, "10.0.2.2 %*s %x", &arpflags) == 1)
		len = add(len, " arp=0x%x", arpflags);
	len = pairs(len, slurp(SNMP), "Tcp:", tcp, tcpl);
	len = socks(len, TCP, "0202000A");	/* 10.0.2.2 */
	/* fec0::2; tcp6 is missing on a kernel without IPv6 */
	return socks(len, TCP6, "0000C0FE000000000000000002000000");
}

/* write() line[] as one line (add() leaves room for the newline) */
static int put(size_t len)
{
	line[len++] = '\n';
	return write(1, line, len) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned int every = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
	struct timespec ts;
	int i, tcpext_child;
	size_t len;

	if (!every) {
		fprintf(stderr, "usage: netwatch [SECONDS]   (SECONDS > 0)\n");
		return 2;
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("netwatch: mlockall (going on unlocked)");
	for (i = 0; i < NFILES; i++)
		fds[i] = open(files[i], O_RDONLY);
	/* the TcpExt reader is a process of its own: if it stalls, the
	 * other lines go on
	 */
	tcpext_child = fork() == 0;
	if (tcpext_child && mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("netwatch: mlockall (going on unlocked)");
	/* each process keeps only the files it reads */
	for (i = 0; i < NFILES; i++) {
		if ((i == NETSTAT) != tcpext_child && fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	for (;;) {
		clock_gettime(CLOCK_BOOTTIME, &ts);
		if (tcpext_child) {
			len = add(0, "NST WATCH t=%ld tcpext", (long)ts.tv_sec);
			len = pairs(len, slurp(NETSTAT), "TcpExt:", tcpext, NULL);
		} else {
			len = add(0, "NST WATCH t=%ld", (long)ts.tv_sec);
			len = sample(len);
		}
		if (put(len))
			return 1;
		sleep(every);
	}
}
