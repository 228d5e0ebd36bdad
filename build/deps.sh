#!/bin/bash
# Install the Debian packages a part of the project needs, once.
# Usage: build/deps.sh GROUP...   (kernel guest server qemu bench)
# Idempotent: packages already installed are skipped, apt runs only when
# something is missing, and a package that cannot be installed stops with
# a message naming it.
set -eu
. "$(dirname "$0")/BASE"

pkgs_kernel="build-essential flex bison bc libelf-dev libssl-dev cpio
	xz-utils kmod ccache perl $DEBIAN_PACKAGE"
pkgs_guest="busybox-static libc6-dev gcc cpio gzip"
pkgs_server="nfs-ganesha nfs-ganesha-vfs rpcbind nbd-server util-linux"
pkgs_qemu="qemu-system-x86 python3"
pkgs_bench="gnuplot-nox"

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null |
		grep -q '^install ok installed$'
}

want=
for group in "$@"; do
	eval "list=\${pkgs_$group-}"
	if [ -z "$list" ]; then
		echo "deps.sh: unknown group '$group' (kernel guest server qemu bench)" >&2
		exit 2
	fi
	for p in $list; do
		installed "$p" || want="$want $p"
	done
done
[ -n "$want" ] || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$want" >&2
	echo "deps.sh: run as root (or: apt-get install$want)" >&2
	exit 1
fi
echo "deps.sh: installing:$want"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
args=
for p in $want; do
	# The base the patches are made against; fall back to the candidate,
	# build/kernel.sh then says whether the series still applies.
	if [ "$p" = "$DEBIAN_PACKAGE" ] &&
	   apt-cache madison "$p" | grep -q " $DEBIAN_VERSION "; then
		p="$p=$DEBIAN_VERSION"
	fi
	args="$args $p"
done
# shellcheck disable=SC2086
if ! apt-get install -y -qq --no-install-recommends $args >/tmp/nfs-swap-apt.log 2>&1; then
	tail -20 /tmp/nfs-swap-apt.log >&2
	echo "deps.sh: apt-get install failed for:$want (log: /tmp/nfs-swap-apt.log)" >&2
	exit 1
fi
for p in $want; do
	if ! installed "$p"; then
		echo "deps.sh: package $p is still missing after apt-get install" >&2
		exit 1
	fi
done
