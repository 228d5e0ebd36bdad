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
 *   nbd-connect -d /dev/nbdX
 *	Disconnects; prints "NST NBD disconnected dev=/dev/nbdX".
 *
 * Any failure prints a message to stderr and exits with status 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nbd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

static const char *peer = "";	/* "HOST:PORT", for messages */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("nbd-connect: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(void)
{
	fputs("usage: nbd-connect HOST PORT EXPORTNAME /dev/nbdX\n"
	      "       nbd-connect -d /dev/nbdX\n"
	      "HOST is a dotted IPv4 address.\n", stderr);
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

static void nbd_ioctl(int fd, const char *dev, unsigned long req,
		      unsigned long arg, const char *what)
{
	if (ioctl(fd, req, arg) < 0)
		die("%s: ioctl %s: %s%s", dev, what, strerror(errno),
		    errno == ENOTTY ? " (not an NBD device?)" : "");
}

/* Child: serve the device until it is disconnected. */
static void __attribute__((noreturn)) do_it(int fd, const char *dev)
{
	ssize_t n;
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

	/* Memory locks are not inherited across fork(). */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		fprintf(stderr, "nbd-connect: %s: warning: mlockall: %s\n",
			dev, strerror(errno));
	/* Best effort: keep the OOM killer away from the swap server. */
	null = open("/proc/self/oom_score_adj", O_WRONLY);
	if (null >= 0) {
		n = write(null, "-1000", 5);
		(void)n;	/* not fatal */
		close(null);
	}

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

static int connect_dev(const char *host, const char *port, const char *name,
		       const char *dev)
{
	static char peerbuf[128];
	unsigned long long blocks;
	uint64_t size;
	uint16_t tflags;
	int sock, fd;
	pid_t pid;

	snprintf(peerbuf, sizeof(peerbuf), "%s:%s", host, port);
	peer = peerbuf;

	/* We serve swap: never wait for our own pages to be swapped in. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		die("mlockall: %s", strerror(errno));

	sock = tcp_connect(host, port);
	nbd_handshake(sock, name, &size, &tflags);
	set_timeouts(sock, 0);
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

static int disconnect_dev(const char *dev)
{
	int fd = open(dev, O_RDWR);

	if (fd < 0)
		die("%s: cannot open: %s", dev, strerror(errno));
	nbd_ioctl(fd, dev, NBD_DISCONNECT, 0, "NBD_DISCONNECT");
	ioctl(fd, NBD_CLEAR_SOCK, 0);
	close(fd);
	printf("NST NBD disconnected dev=%s\n", dev);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "-d"))
		return disconnect_dev(argv[2]);
	if (argc != 5 || argv[1][0] == '-')
		usage();
	return connect_dev(argv[1], argv[2], argv[3], argv[4]);
}
