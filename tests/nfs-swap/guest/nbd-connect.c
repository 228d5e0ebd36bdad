// SPDX-License-Identifier: GPL-2.0
/*
 * nbd-connect - minimal static NBD client for the nfs-swap test guest.
 *
 * Does the NBD "fixed newstyle" handshake (NBD_OPT_EXPORT_NAME only) over
 * TCP/IPv4, hands the socket to the kernel nbd driver through the classic
 * ioctl interface and leaves a child process sitting in NBD_DO_IT, much
 * like "nbd-client -swap": memory is locked so the client keeps working
 * when the device it serves is used for swap.
 *
 *   nbd-connect HOST PORT EXPORTNAME /dev/nbdX
 *	On success prints one line to stdout:
 *	"NST NBD connected dev=/dev/nbdX size=<bytes> pid=<child pid>"
 *   nbd-connect -p HOST PORT EXPORTNAME /dev/nbdX
 *	The same through the kernel's netlink interface, persistent: the
 *	device waits up to DEAD_CONN_TIMEOUT s for a new connection when
 *	the server goes away, and a child process watches for the
 *	kernel's NBD_CMD_LINK_DEAD, connects to HOST PORT again and hands
 *	the new socket over with NBD_CMD_RECONFIGURE (as "nbd-client
 *	-persist" does).  Each reconnect prints to stderr (the console):
 *	"NST NBD reconnected dev=/dev/nbdX tries=<n>".  The child ends
 *	when the device is disconnected.
 *   nbd-connect -d /dev/nbdX
 *	Disconnects (netlink NBD_CMD_DISCONNECT, for devices connected
 *	either way); prints "NST NBD disconnected dev=/dev/nbdX".
 *
 * Any failure prints a message to stderr and exits with status 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Handshake constants from the NBD protocol document. */
#define NBD_INIT_MAGIC		"NBDMAGIC"
#define NBD_OPTS_MAGIC		0x49484156454F5054ULL	/* "IHAVEOPT" */
#define NBD_CLISERV_MAGIC	0x0000420281861253ULL	/* oldstyle */
#define NBD_FLAG_FIXED_NEWSTYLE	(1 << 0)		/* handshake flags */
#define NBD_FLAG_NO_ZEROES	(1 << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1 << 0)		/* client flags */
#define NBD_FLAG_C_NO_ZEROES	(1 << 1)
#define NBD_OPT_EXPORT_NAME	1
#define NBD_MAX_NAME		4096
#define NBD_ZEROES		124

#define BLKSIZE			4096
#define HANDSHAKE_TIMEOUT	10	/* seconds, connect and handshake */
#define LIVE_TIMEOUT_MS		10000	/* wait for /sys/block/X/size */
#define LIVE_STEP_MS		50
#define DEAD_CONN_TIMEOUT	60	/* s that I/O waits for a reconnect */
#define RECONNECT_TRIES		100	/* a second apart */
#define NL_BUFSIZE		8192

static const char *peer = "";	/* "HOST:PORT", for messages */
/*
 * While it reconnects, the watcher must not exit on an error, nor fork
 * a child to fail in: a child's mlockall() copies its pages, which
 * cannot be had while swap waits for this very reconnect.  die() jumps
 * back to the watcher's retry loop instead, and the socket of the
 * failed try is closed there.
 */
static jmp_buf *retry;
static int try_sock = -1;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("nbd-connect: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (retry)
		longjmp(*retry, 1);
	exit(2);
}

static void usage(void)
{
	fputs("usage: nbd-connect [-p] HOST PORT EXPORTNAME /dev/nbdX\n"
	      "       nbd-connect -d /dev/nbdX\n"
	      "HOST is a dotted IPv4 address; -p: through netlink, "
	      "reconnecting when the server comes back.\n", stderr);
	exit(2);
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint16_t get_be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static unsigned char *put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
	return p + 8;
}

static unsigned char *put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return p + 4;
}

/* Render up to 8 received bytes as "0x... ("text")" for error messages. */
static const char *show_bytes(const unsigned char *p, size_t len)
{
	static char buf[64];
	char *s = buf;
	size_t i;

	s += sprintf(s, "0x");
	for (i = 0; i < len && i < 8; i++)
		s += sprintf(s, "%02x", p[i]);
	s += sprintf(s, " (\"");
	for (i = 0; i < len && i < 8; i++)
		*s++ = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '.';
	sprintf(s, "\")");
	return buf;
}

/*
 * Receive exactly len bytes of "what"; dies on error, timeout, EOF or a
 * short read.  hint, if not NULL, is appended to the EOF message.
 */
static void recv_exact(int fd, void *buf, size_t len, const char *what,
		       const char *hint)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			die("%s: timed out after %d s waiting for %s "
			    "(got %zu of %zu bytes)%s", peer,
			    HANDSHAKE_TIMEOUT, what, done, len,
			    done ? "" : ": is this an NBD server?");
		if (n < 0)
			die("%s: error reading %s: %s", peer, what,
			    strerror(errno));
		if (n == 0) {
			if (done)
				die("%s: short read: server closed the "
				    "connection after %zu of %zu bytes of %s",
				    peer, done, len, what);
			die("%s: server closed the connection, expected %s%s",
			    peer, what, hint ? hint : "");
		}
		done += n;
	}
}

static void send_all(int fd, const void *buf, size_t len, const char *what)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = send(fd, (const char *)buf + done, len - done,
			 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: error sending %s: %s", peer, what,
			    (errno == EAGAIN || errno == EWOULDBLOCK) ?
			    "timed out" : strerror(errno));
		done += n;
	}
}

static void set_timeouts(int sock, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		die("%s: setsockopt(SO_RCVTIMEO/SO_SNDTIMEO): %s", peer,
		    strerror(errno));
}

static int tcp_connect(const char *host, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned long pnum;
	char *end;
	int sock, one = 1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad HOST '%s': expected a dotted IPv4 address", host);
	errno = 0;
	pnum = strtoul(port, &end, 10);
	if (errno || !*port || *end || pnum < 1 || pnum > 65535)
		die("bad PORT '%s': expected a number 1-65535", port);
	sa.sin_port = htons(pnum);

	sock = socket(AF_INET, SOCK_STREAM, 0);
	if (sock < 0)
		die("%s: socket: %s", peer, strerror(errno));
	try_sock = sock;
	/* Bound connect and handshake; cleared again before the kernel
	 * gets the socket (the receive timeout would kill it when idle).
	 */
	set_timeouts(sock, HANDSHAKE_TIMEOUT);
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINPROGRESS || errno == EAGAIN)
			die("%s: connect: timed out after %d s", peer,
			    HANDSHAKE_TIMEOUT);
		die("%s: connect: %s", peer, strerror(errno));
	}
	if (setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("%s: setsockopt(TCP_NODELAY): %s", peer, strerror(errno));
	return sock;
}

/* Fixed newstyle negotiation ending in NBD_OPT_EXPORT_NAME. */
static void nbd_handshake(int sock, const char *name, uint64_t *size,
			  uint16_t *tflags)
{
	unsigned char buf[16 + NBD_MAX_NAME], *p;
	unsigned char zeroes[NBD_ZEROES];
	uint16_t hflags;
	uint32_t cflags;
	size_t nlen = strlen(name);
	uint64_t magic;
	size_t i;

	if (nlen > NBD_MAX_NAME)
		die("export name is %zu bytes long, the limit is %d", nlen,
		    NBD_MAX_NAME);

	recv_exact(sock, buf, 8, "the NBDMAGIC greeting", NULL);
	if (memcmp(buf, NBD_INIT_MAGIC, 8))
		die("%s: bad server magic %s, expected 0x%016llx "
		    "(\"NBDMAGIC\"): is this an NBD server?", peer,
		    show_bytes(buf, 8), (unsigned long long)get_be64(
		    (const unsigned char *)NBD_INIT_MAGIC));

	recv_exact(sock, buf, 8, "the IHAVEOPT magic", NULL);
	magic = get_be64(buf);
	if (magic == NBD_CLISERV_MAGIC)
		die("%s: server uses oldstyle negotiation (magic 0x%016llx), "
		    "expected newstyle IHAVEOPT 0x%016llx: not supported",
		    peer, (unsigned long long)magic, NBD_OPTS_MAGIC);
	if (magic != NBD_OPTS_MAGIC)
		die("%s: bad option magic %s, expected 0x%016llx "
		    "(\"IHAVEOPT\")", peer, show_bytes(buf, 8),
		    NBD_OPTS_MAGIC);

	recv_exact(sock, buf, 2, "the handshake flags", NULL);
	hflags = get_be16(buf);
	if (!(hflags & NBD_FLAG_FIXED_NEWSTYLE))
		die("%s: server handshake flags 0x%04x lack "
		    "NBD_FLAG_FIXED_NEWSTYLE (0x%04x): fixed newstyle needed",
		    peer, hflags, NBD_FLAG_FIXED_NEWSTYLE);

	cflags = NBD_FLAG_C_FIXED_NEWSTYLE;
	if (hflags & NBD_FLAG_NO_ZEROES)
		cflags |= NBD_FLAG_C_NO_ZEROES;
	put_be32(buf, cflags);
	send_all(sock, buf, 4, "the client flags");

	p = put_be64(buf, NBD_OPTS_MAGIC);
	p = put_be32(p, NBD_OPT_EXPORT_NAME);
	p = put_be32(p, nlen);
	memcpy(p, name, nlen);
	send_all(sock, buf, 16 + nlen, "NBD_OPT_EXPORT_NAME");

	recv_exact(sock, buf, 10, "the export size and transmission flags",
		   " in reply to NBD_OPT_EXPORT_NAME: does the export exist "
		   "and may we use it?");
	*size = get_be64(buf);
	*tflags = get_be16(buf + 8);

	if (!(cflags & NBD_FLAG_C_NO_ZEROES)) {
		recv_exact(sock, zeroes, NBD_ZEROES, "124 zero bytes", NULL);
		for (i = 0; i < NBD_ZEROES; i++)
			if (zeroes[i])
				die("%s: expected 124 zero bytes after the "
				    "transmission flags, byte %zu is 0x%02x",
				    peer, i, zeroes[i]);
	}

	if (!(*tflags & NBD_FLAG_HAS_FLAGS))
		die("%s: transmission flags 0x%04x lack NBD_FLAG_HAS_FLAGS "
		    "(0x%04x)", peer, *tflags, NBD_FLAG_HAS_FLAGS);
	if (*size < BLKSIZE)
		die("%s: export '%s' is %llu bytes, need at least %d", peer,
		    name, (unsigned long long)*size, BLKSIZE);
	if (*size % BLKSIZE)
		fprintf(stderr, "nbd-connect: %s: warning: export size %llu "
			"is not a multiple of %d, ignoring the tail\n", peer,
			(unsigned long long)*size, BLKSIZE);
	if (*tflags & NBD_FLAG_READ_ONLY)
		fprintf(stderr, "nbd-connect: %s: warning: export '%s' is "
			"read-only\n", peer, name);
}

/* Connect to the server and negotiate; returns the socket. */
static int server_connect(const char *host, const char *port,
			  const char *name, uint64_t *size, uint16_t *tflags)
{
	int sock = tcp_connect(host, port);

	nbd_handshake(sock, name, size, tflags);
	set_timeouts(sock, 0);
	return sock;
}

static void nbd_ioctl(int fd, const char *dev, unsigned long req,
		      unsigned long arg, const char *what)
{
	if (ioctl(fd, req, arg) < 0)
		die("%s: ioctl %s: %s%s", dev, what, strerror(errno),
		    errno == ENOTTY ? " (not an NBD device?)" : "");
}

/*
 * As swap's server: locked in memory, never the OOM killer's pick,
 * never waiting for I/O in reclaim (PR_SET_IO_FLUSHER, meant for
 * userspace block drivers), and real-time: the page allocator lets an
 * RT task go below the min watermark (ALLOC_MIN_RESERVE), which is
 * where a reconnect finds memory while swap waits for it.
 */
static void become_swap_server(const char *dev)
{
	struct sched_param rt = { .sched_priority = 1 };
	int fd;
	ssize_t n;

	/* Memory locks are not inherited across fork(). */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		fprintf(stderr, "nbd-connect: %s: warning: mlockall: %s\n",
			dev, strerror(errno));
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd >= 0) {
		n = write(fd, "-1000", 5);
		(void)n;	/* best effort */
		close(fd);
	}
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		fprintf(stderr, "nbd-connect: %s: warning: "
			"PR_SET_IO_FLUSHER: %s\n", dev, strerror(errno));
	if (sched_setscheduler(0, SCHED_FIFO, &rt))
		fprintf(stderr, "nbd-connect: %s: warning: SCHED_FIFO: %s\n",
			dev, strerror(errno));
}

/* Touch the stack a reconnect uses while memory is to be had: with
 * MCL_FUTURE the pages stay.
 */
static void __attribute__((noinline)) prefault_stack(void)
{
	volatile char pad[64 * 1024];
	size_t i;

	for (i = 0; i < sizeof(pad); i += 4096)
		pad[i] = 0;
}

/* Detach from the caller's session and output (stderr stays: the
 * console).
 */
static void daemonize(const char *dev)
{
	int null;

	setsid();
	if (chdir("/"))
		fprintf(stderr, "nbd-connect: %s: warning: chdir /: %s\n",
			dev, strerror(errno));
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	} else {
		close(STDIN_FILENO);
		close(STDOUT_FILENO);
	}
}

/* Child: serve the device until it is disconnected. */
static void __attribute__((noreturn)) do_it(int fd, const char *dev)
{
	daemonize(dev);
	become_swap_server(dev);
	if (ioctl(fd, NBD_DO_IT, 0) < 0)
		fprintf(stderr, "nbd-connect: %s: NBD_DO_IT: %s\n", dev,
			strerror(errno));
	ioctl(fd, NBD_CLEAR_QUE, 0);
	ioctl(fd, NBD_CLEAR_SOCK, 0);
	exit(0);
}

/* Returns the value in path, 0 if unreadable (errno set). */
static unsigned long long read_sysfs_u64(const char *path)
{
	unsigned long long v = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1) {
		v = 0;
		errno = EINVAL;
	}
	fclose(f);
	return v;
}

static void wait_live(const char *dev, pid_t pid, unsigned long long bytes)
{
	const struct timespec step = { .tv_nsec = LIVE_STEP_MS * 1000000L };
	const char *name = strrchr(dev, '/');
	char path[256];
	int waited, status, err = 0;

	name = name ? name + 1 : dev;
	snprintf(path, sizeof(path), "/sys/block/%s/size", name);

	for (waited = 0; ; waited += LIVE_STEP_MS) {
		errno = 0;
		if (read_sysfs_u64(path)) {
			printf("NST NBD connected dev=%s size=%llu pid=%d\n",
			       dev, bytes, (int)pid);
			fflush(stdout);
			exit(0);
		}
		err = errno;
		if (waitpid(pid, &status, WNOHANG) == pid)
			die("%s: NBD_DO_IT child %d exited (%s %d) before the "
			    "device came up", dev, (int)pid,
			    WIFEXITED(status) ? "status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status));
		if (waited >= LIVE_TIMEOUT_MS)
			break;
		nanosleep(&step, NULL);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	die("%s: device not live after %d ms: %s %s%s (child %d killed)",
	    dev, LIVE_TIMEOUT_MS, path, err ? "unreadable: " : "still 0",
	    err ? strerror(err) : "", (int)pid);
}

static void set_peer(const char *host, const char *port)
{
	static char peerbuf[128];

	snprintf(peerbuf, sizeof(peerbuf), "%s:%s", host, port);
	peer = peerbuf;
}

static int connect_dev(const char *host, const char *port, const char *name,
		       const char *dev)
{
	unsigned long long blocks;
	uint64_t size;
	uint16_t tflags;
	int sock, fd;
	pid_t pid;

	set_peer(host, port);
	/* We serve swap: never wait for our own pages to be swapped in. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		die("mlockall: %s", strerror(errno));

	sock = server_connect(host, port, name, &size, &tflags);
	blocks = size / BLKSIZE;

	/* Opened only now so the handshake can be tested without nbd. */
	fd = open(dev, O_RDWR);
	if (fd < 0)
		die("%s: cannot open: %s (handshake with %s export '%s' was "
		    "fine: size %llu, flags 0x%04x)", dev, strerror(errno),
		    peer, name, (unsigned long long)size, tflags);

	ioctl(fd, NBD_CLEAR_SOCK, 0);	/* stale state; errors don't matter */
	nbd_ioctl(fd, dev, NBD_SET_BLKSIZE, BLKSIZE, "NBD_SET_BLKSIZE");
	if ((unsigned long)blocks != blocks)
		die("%s: %llu blocks do not fit an unsigned long", dev,
		    blocks);
	nbd_ioctl(fd, dev, NBD_SET_SIZE_BLOCKS, blocks,
		  "NBD_SET_SIZE_BLOCKS");
	nbd_ioctl(fd, dev, NBD_SET_FLAGS, tflags, "NBD_SET_FLAGS");
	nbd_ioctl(fd, dev, NBD_SET_SOCK, sock, "NBD_SET_SOCK");

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		do_it(fd, dev);

	close(sock);
	wait_live(dev, pid, blocks * BLKSIZE);
	return 2;	/* not reached */
}

/*
 * Generic netlink, by hand: the guest has no libnl.  A request is built
 * in one buffer: nlmsghdr, genlmsghdr, then attributes.
 */
union nlbuf {
	struct nlmsghdr h;
	char b[NL_BUFSIZE];
};

#define NLA_FIRST(h)	((struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN))
#define NLA_PAYLOAD(a)	((void *)((char *)(a) + NLA_HDRLEN))
#define NLA_OK(a, rem)	((rem) >= (int)sizeof(struct nlattr) && \
			 (a)->nla_len >= sizeof(struct nlattr) && \
			 (a)->nla_len <= (rem))
#define NLA_NEXT(a, rem) ((rem) -= NLA_ALIGN((a)->nla_len), \
			  (struct nlattr *)((char *)(a) + NLA_ALIGN((a)->nla_len)))
#define NLA_TYPE(a)	((a)->nla_type & NLA_TYPE_MASK)

static uint16_t nbd_family;	/* generic netlink ids of "nbd" */
static uint32_t nbd_mcgroup;	/* and of its "nbd_mc_group" */

static int genl_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("generic netlink socket: %s", strerror(errno));
	return fd;
}

static struct nlmsghdr *genl_msg(union nlbuf *m, uint16_t family,
				 uint8_t cmd)
{
	struct genlmsghdr *g;

	memset(m, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	m->h.nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN;
	m->h.nlmsg_type = family;
	m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = NLMSG_DATA(&m->h);
	g->cmd = cmd;
	g->version = family == GENL_ID_CTRL ? 1 : NBD_GENL_VERSION;
	return &m->h;
}

/* Append an attribute; a nest is closed with nla_end(). */
static struct nlattr *nla_put(struct nlmsghdr *h, uint16_t type,
			      const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(h->nlmsg_len);
	struct nlattr *a = (struct nlattr *)((char *)h + off);

	if (off + NLA_HDRLEN + NLA_ALIGN(len) > NL_BUFSIZE)
		die("netlink request too long");
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy(NLA_PAYLOAD(a), data, len);
	h->nlmsg_len = off + NLA_ALIGN(a->nla_len);
	return a;
}

static void nla_put_u32(struct nlmsghdr *h, uint16_t type, uint32_t v)
{
	nla_put(h, type, &v, sizeof(v));
}

static void nla_put_u64(struct nlmsghdr *h, uint16_t type, uint64_t v)
{
	nla_put(h, type, &v, sizeof(v));
}

static void nla_end(struct nlmsghdr *h, struct nlattr *nest)
{
	nest->nla_len = (char *)h + h->nlmsg_len - (char *)nest;
}

/* NBD_ATTR_SOCKETS holding the one socket sock. */
static void nla_put_socket(struct nlmsghdr *h, int sock)
{
	struct nlattr *socks, *item;

	socks = nla_put(h, NBD_ATTR_SOCKETS | NLA_F_NESTED, NULL, 0);
	item = nla_put(h, NBD_SOCK_ITEM | NLA_F_NESTED, NULL, 0);
	nla_put_u32(h, NBD_SOCK_FD, sock);
	nla_end(h, item);
	nla_end(h, socks);
}

/* CTRL_CMD_GETFAMILY's reply: the family id and multicast group id. */
static void parse_family(struct nlmsghdr *h)
{
	int rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN, grem, irem;
	struct nlattr *a, *g, *i;
	const char *name;
	uint32_t id;

	for (a = NLA_FIRST(h); NLA_OK(a, rem); a = NLA_NEXT(a, rem)) {
		if (NLA_TYPE(a) == CTRL_ATTR_FAMILY_ID)
			nbd_family = *(uint16_t *)NLA_PAYLOAD(a);
		if (NLA_TYPE(a) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		grem = a->nla_len - NLA_HDRLEN;
		for (g = NLA_PAYLOAD(a); NLA_OK(g, grem);
		     g = NLA_NEXT(g, grem)) {
			name = NULL;
			id = 0;
			irem = g->nla_len - NLA_HDRLEN;
			for (i = NLA_PAYLOAD(g); NLA_OK(i, irem);
			     i = NLA_NEXT(i, irem)) {
				if (NLA_TYPE(i) == CTRL_ATTR_MCAST_GRP_NAME)
					name = NLA_PAYLOAD(i);
				if (NLA_TYPE(i) == CTRL_ATTR_MCAST_GRP_ID)
					id = *(uint32_t *)NLA_PAYLOAD(i);
			}
			if (name && !strcmp(name, NBD_GENL_MCAST_GROUP_NAME))
				nbd_mcgroup = id;
		}
	}
}

/*
 * Send a request and read until its acknowledgement; replies to it go
 * to parse (if not NULL).  Returns 0 or the negative errno the kernel
 * answered.
 */
static int genl_talk(int fd, struct nlmsghdr *req,
		     void (*parse)(struct nlmsghdr *))
{
	static uint32_t seq;
	static union nlbuf reply;
	struct nlmsghdr *h;
	ssize_t n;
	int rem;

	req->nlmsg_seq = ++seq;
	if (send(fd, req, req->nlmsg_len, 0) < 0)
		die("netlink send: %s", strerror(errno));
	for (;;) {
		n = recv(fd, &reply, sizeof(reply), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("netlink receive: %s", strerror(errno));
		rem = n;
		for (h = &reply.h; NLMSG_OK(h, rem); h = NLMSG_NEXT(h, rem)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (parse)
				parse(h);
		}
	}
}

/* Learn the ids of the kernel's "nbd" family and multicast group. */
static void genl_resolve(int fd)
{
	union nlbuf m;
	struct nlmsghdr *h = genl_msg(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
	int err;

	nla_put(h, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME,
		sizeof(NBD_GENL_FAMILY_NAME));
	err = genl_talk(fd, h, parse_family);
	if (err)
		die("the kernel has no generic netlink family \"%s\": %s "
		    "(is CONFIG_BLK_DEV_NBD built in or nbd loaded?)",
		    NBD_GENL_FAMILY_NAME, strerror(-err));
	if (!nbd_family || !nbd_mcgroup)
		die("the kernel's \"%s\" family has no id or no group \"%s\"",
		    NBD_GENL_FAMILY_NAME, NBD_GENL_MCAST_GROUP_NAME);
}

/* The index of /dev/nbdN. */
static uint32_t nbd_index(const char *dev)
{
	const char *name = strrchr(dev, '/');
	unsigned long idx;
	char *end;

	name = name ? name + 1 : dev;
	if (strncmp(name, "nbd", 3) || !name[3])
		die("%s: not an NBD device name (expected /dev/nbdN)", dev);
	errno = 0;
	idx = strtoul(name + 3, &end, 10);
	if (errno || *end || idx > 0xfffff)
		die("%s: not an NBD device name (expected /dev/nbdN)", dev);
	return idx;
}

/* The device is connected while the kernel shows its client's pid. */
static int nbd_bound(uint32_t index)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/block/nbd%u/pid", index);
	return access(path, F_OK) == 0;
}

/* One reconnect: connect, negotiate, hand the socket to the kernel
 * over the request socket req.  Errors die() back to reconnect().
 */
static void reconnect_once(int req, const char *host, const char *port,
			   const char *name, const char *dev, uint32_t index,
			   uint64_t want)
{
	static union nlbuf m;
	struct nlmsghdr *h;
	uint64_t size;
	uint16_t tflags;
	int sock, err;

	sock = server_connect(host, port, name, &size, &tflags);
	if (size / BLKSIZE * BLKSIZE != want)
		die("%s: export '%s' is %llu bytes now, was %llu: not "
		    "reconnecting to a different export", dev, name,
		    (unsigned long long)size, (unsigned long long)want);
	h = genl_msg(&m, nbd_family, NBD_CMD_RECONFIGURE);
	nla_put_u32(h, NBD_ATTR_INDEX, index);
	nla_put_socket(h, sock);
	err = genl_talk(req, h, NULL);
	if (err)
		die("%s: NBD_CMD_RECONFIGURE: %s", dev, strerror(-err));
	close(sock);	/* the kernel holds its own reference */
	try_sock = -1;
}

/* Does this message say that device index lost its connection? */
static int link_dead(struct nlmsghdr *h, uint32_t index)
{
	int rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	struct genlmsghdr *g = NLMSG_DATA(h);
	struct nlattr *a;

	if (h->nlmsg_type != nbd_family || g->cmd != NBD_CMD_LINK_DEAD)
		return 0;
	for (a = NLA_FIRST(h); NLA_OK(a, rem); a = NLA_NEXT(a, rem))
		if (NLA_TYPE(a) == NBD_ATTR_INDEX)
			return *(uint32_t *)NLA_PAYLOAD(a) == index;
	return 0;
}

static void reconnect(int req, const char *host, const char *port,
		      const char *name, const char *dev, uint32_t index,
		      uint64_t want)
{
	static jmp_buf failed;
	static int tries;	/* static: kept across longjmp */

	fprintf(stderr, "NST NBD link-dead dev=%s: reconnecting to %s\n",
		dev, peer);
	tries = 0;
	if (setjmp(failed)) {	/* a try died: close its socket, wait */
		if (try_sock >= 0)
			close(try_sock);
		try_sock = -1;
		sleep(1);
	}
	retry = NULL;
	if (++tries > RECONNECT_TRIES || !nbd_bound(index)) {
		fprintf(stderr, "nbd-connect: %s: gave up reconnecting to %s "
			"after %d tries\n", dev, peer, tries - 1);
		return;
	}
	retry = &failed;
	reconnect_once(req, host, port, name, dev, index, want);
	retry = NULL;
	fprintf(stderr, "NST NBD reconnected dev=%s tries=%d\n", dev, tries);
}

/* Child: reconnect whenever the kernel says the link is dead. */
static void __attribute__((noreturn))
watch(int nl, int req, const char *host, const char *port, const char *name,
	const char *dev, uint32_t index, uint64_t want)
{
	static union nlbuf m;
	struct timeval tv = { .tv_sec = 1 };
	struct nlmsghdr *h;
	ssize_t n;
	int rem;

	daemonize(dev);
	become_swap_server(dev);
	prefault_stack();
	if (setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		fprintf(stderr, "nbd-connect: %s: warning: SO_RCVTIMEO: %s\n",
			dev, strerror(errno));
	while (nbd_bound(index)) {
		n = recv(nl, &m, sizeof(m), 0);
		if (n < 0)
			continue;	/* timeout: still connected? */
		rem = n;
		for (h = &m.h; NLMSG_OK(h, rem); h = NLMSG_NEXT(h, rem))
			if (link_dead(h, index))
				reconnect(req, host, port, name, dev, index,
					  want);
	}
	exit(0);
}

static int connect_netlink(const char *host, const char *port,
			   const char *name, const char *dev)
{
	uint32_t index = nbd_index(dev);
	union nlbuf m;
	struct nlmsghdr *h;
	uint64_t size;
	uint16_t tflags;
	int sock, nl, req, err;
	pid_t pid;

	set_peer(host, port);
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		die("mlockall: %s", strerror(errno));
	req = genl_open();
	genl_resolve(req);
	/* Listen before connecting: no link-dead event may be missed. */
	nl = genl_open();
	if (setsockopt(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &nbd_mcgroup,
		       sizeof(nbd_mcgroup)))
		die("joining netlink group %s: %s", NBD_GENL_MCAST_GROUP_NAME,
		    strerror(errno));

	sock = server_connect(host, port, name, &size, &tflags);
	size = size / BLKSIZE * BLKSIZE;
	h = genl_msg(&m, nbd_family, NBD_CMD_CONNECT);
	nla_put_u32(h, NBD_ATTR_INDEX, index);
	nla_put_u64(h, NBD_ATTR_SIZE_BYTES, size);
	nla_put_u64(h, NBD_ATTR_BLOCK_SIZE_BYTES, BLKSIZE);
	nla_put_u64(h, NBD_ATTR_SERVER_FLAGS, tflags);
	nla_put_u64(h, NBD_ATTR_DEAD_CONN_TIMEOUT, DEAD_CONN_TIMEOUT);
	nla_put_socket(h, sock);
	err = genl_talk(req, h, NULL);
	if (err)
		die("%s: NBD_CMD_CONNECT: %s%s", dev, strerror(-err),
		    err == -EBUSY ? " (in use: nbd-connect -d it first)" : "");
	close(sock);	/* the kernel holds its own reference */

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0)
		watch(nl, req, host, port, name, dev, index, size);
	close(nl);
	close(req);
	wait_live(dev, pid, size);
	return 2;	/* not reached */
}

static int disconnect_dev(const char *dev)
{
	uint32_t index = nbd_index(dev);
	union nlbuf m;
	struct nlmsghdr *h;
	int fd, err;

	fd = genl_open();
	genl_resolve(fd);
	h = genl_msg(&m, nbd_family, NBD_CMD_DISCONNECT);
	nla_put_u32(h, NBD_ATTR_INDEX, index);
	err = genl_talk(fd, h, NULL);
	if (err)
		die("%s: NBD_CMD_DISCONNECT: %s", dev, strerror(-err));
	close(fd);
	printf("NST NBD disconnected dev=%s\n", dev);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "-d"))
		return disconnect_dev(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "-p"))
		return connect_netlink(argv[2], argv[3], argv[4], argv[5]);
	if (argc != 5 || argv[1][0] == '-')
		usage();
	return connect_dev(argv[1], argv[2], argv[3], argv[4]);
}
