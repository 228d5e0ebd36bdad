#!/bin/bash
# Build the guest initramfs: Debian's busybox-static, the init and its
# shell library, and the project's static C programs.  No other root
# filesystem.  Usage: guest/mkinitramfs.sh OUTPUT.cpio.gz
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: mkinitramfs.sh OUTPUT.cpio.gz}
work=$(dirname "$out")/initramfs.d
bb=$(dpkg -L busybox-static 2>/dev/null | grep '/busybox$' | head -1)
[ -n "$bb" ] && [ -x "$bb" ] || {
	echo "mkinitramfs.sh: busybox-static is missing (build/deps.sh guest)" >&2
	exit 1
}
rm -rf "$work"
mkdir -p "$work"/{bin,lib,proc,sys,dev,tmp,mnt}
cp "$bb" "$work/bin/busybox"
for prog in workload swaptool nbd-connect rawio netwatch kprofile; do
	gcc -static -O2 -Wall -Wextra -Werror -o "$work/bin/$prog" "$here/$prog.c"
done
install -m 755 "$here/init" "$work/init"
install -m 644 "$here/nst.sh" "$work/lib/nst.sh"
(cd "$work" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
