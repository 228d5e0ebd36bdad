// SPDX-License-Identifier: GPL-2.0
/*
 * swaptool - the guest's system calls for the nfs-swap suite, each
 * reported as one line the host parses, with the errno by name so that a
 * test can assert exactly which error the kernel gave:
 *   swaptool on FILE [PRIO]   swapon(2)   -> NST SWAPON ok|error ...
 *   swaptool off FILE         swapoff(2)  -> NST SWAPOFF ok|error ...
 *   swaptool mount SRC DIR FSTYPE OPTIONS -> NST MOUNT ok|error ...
 *   swaptool umount DIR                   -> NST UMOUNT ok|error ...
 * Exit status 0 on success, 1 when the call failed, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/swap.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define ERRNO(e)	{ e, #e }
static const struct {
	int err;
	const char *name;
} errnames[] = {
	ERRNO(EPERM), ERRNO(ENOENT), ERRNO(EIO), ERRNO(EBADF), ERRNO(ENOMEM),
	ERRNO(EACCES), ERRNO(EBUSY), ERRNO(EEXIST), ERRNO(ENODEV),
	ERRNO(ENOTDIR), ERRNO(EINVAL), ERRNO(ENFILE), ERRNO(ETXTBSY),
	ERRNO(EFBIG), ERRNO(ENOSPC), ERRNO(EROFS), ERRNO(ENOTBLK),
	ERRNO(ETIMEDOUT), ERRNO(ECONNREFUSED), ERRNO(EOPNOTSUPP),
	ERRNO(EAGAIN), ERRNO(EREMOTEIO), ERRNO(ESTALE),
};

static const char *errname(int e)
{
	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (errnames[i].err == e)
			return errnames[i].name;
	return "E?";
}

static int report(const char *what, const char *target, int ret)
{
	if (!ret) {
		printf("NST %s ok target=%s\n", what, target);
		return 0;
	}
	printf("NST %s error target=%s errno=%s (%s)\n", what, target,
	       errname(errno), strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "on")) {
		int flags = 0;

		if (argc > 3)
			flags = SWAP_FLAG_PREFER |
				(atoi(argv[3]) & SWAP_FLAG_PRIO_MASK);
		return report("SWAPON", argv[2], swapon(argv[2], flags));
	}
	if (argc == 3 && !strcmp(argv[1], "off"))
		return report("SWAPOFF", argv[2], swapoff(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "mount"))
		return report("MOUNT", argv[3],
			      mount(argv[2], argv[3], argv[4], 0, argv[5]));
	if (argc == 3 && !strcmp(argv[1], "umount"))
		return report("UMOUNT", argv[2], umount(argv[2]));
	fprintf(stderr,
		"usage: swaptool on FILE [PRIO] | off FILE |\n"
		"       mount SRC DIR FSTYPE OPTIONS | umount DIR\n");
	return 2;
}
