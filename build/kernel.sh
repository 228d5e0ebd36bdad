#!/bin/bash
# Build a guest kernel from Debian's linux-source tarball.
# Usage: build/kernel.sh stock|patched|patched-N|patched-without-N[@CONFIG...]
#   stock:     the base exactly as Debian ships it
#   patched:   the base + the project's new files (mm/, fs/, net/, ...) +
#              patches/series applied in order
#   patched-N: the same with only the first N patches of the series, to
#              show what one patch changes (tests/nfs-swap/compare -k)
#   patched-without-N: the whole series but patch N, for a patch whose
#              effect needs a later one (0020's path is only reached
#              with 0021's spliced pages); the later patches must still
#              apply without it
#   @CONFIG:   any of them configured with build/guest-CONFIG.config
#              merged after build/guest.config (patched@slub), to show
#              what a configuration changes; several apply in order
# Output: out/kernel/VARIANT/{bzImage,config,build.log,made-of}
# build/kernel.sh --check VARIANT only says whether VARIANT is one (exit 2
# and why if not), for the tools that check a plan before they start it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/build/BASE"
check=
[ "${1:-}" != --check ] || { check=1; shift; }
variant=${1:?usage: build/kernel.sh [--check] stock|patched|patched-N|patched-without-N[@CONFIG...]}
kind=${variant%%@*} upto='' without='' frags=''
case $kind in
stock|patched) ;;
patched-[0-9]|patched-[0-9][0-9]) upto=${kind#patched-};;
patched-without-[1-9]|patched-without-[1-9][0-9]) without=${kind#patched-without-};;
*)
	echo "kernel.sh: unknown variant '$variant' (stock, patched, patched-N with" \
	     "N the number of patches of patches/series to apply, or patched-without-N" \
	     "without patch N; each may add @CONFIG)" >&2
	exit 2;;
esac
if [ "$kind" != "$variant" ]; then
	for c in $(tr '@' ' ' <<<"${variant#*@}"); do
		f=build/guest-$c.config
		[ -r "$root/$f" ] || {
			echo "kernel.sh: '@$c' in '$variant' names $f, which does not exist" \
			     "(the configurations: $(cd "$root/build" && ls guest-*.config 2>/dev/null |
				sed 's/^guest-\(.*\)\.config$/@\1/' | paste -sd ' '))" >&2
			exit 2
		}
		frags="$frags $root/$f"
	done
	[ -n "$frags" ] || { echo "kernel.sh: '$variant' has an empty @CONFIG" >&2; exit 2; }
fi
[ -z "$check" ] || exit 0

kdirs="arch block crypto drivers fs include init kernel lib mm net security Documentation"
dest=$root/out/kernel/$variant
tree=$dest/linux
log=$dest/build.log
mkdir -p "$dest"

die() { echo "kernel.sh ($variant): $*" >&2; exit 1; }

series=$root/patches/series
series_patches() { grep -v '^[[:space:]]*\(#\|$\)' "$series"; }	# in order
# the patches this variant applies, in order
variant_patches() { series_patches | head -n "${upto:-999}" | awk -v w="$without" 'NR != w'; }

# made_of: what the variant is made of, one line, for the outputs that
# name a kernel (tests/nfs-swap/compare and tally): "patched" means
# different series on different days.
made_of() {
	local last
	if [ "$kind" = stock ]; then
		echo "$(dpkg-query -W -f '${Package} ${Version}' "$DEBIAN_PACKAGE"), no patches"
	elif [ ! -f "$series" ]; then
		echo "the base + the new files, no patches"
	else
		last=$(series_patches | head -n "${upto:-999}" | tail -n 1)
		echo "the base + patches 0001-${last%%-*}${without:+ except $(printf %04d "$without")} (last: $last)"
	fi | sed "s|\$|${frags:+, configured with}${frags//$root\//}|"
}

[ -r "$TARBALL" ] || die "$TARBALL is missing: install $DEBIAN_PACKAGE (build/deps.sh kernel)"

# Everything the tree is made from; a change re-extracts it.
inputs() {
	cat "$root/build/BASE" "$root/build/guest.config" $frags
	ls -l --time-style=+%s "$TARBALL" | awk '{print $5, $6}'
	if [ "$kind" != stock ]; then
		(cd "$root" && for d in $kdirs patches; do
			[ -d "$d" ] && find "$d" -type f | sort | xargs -r sha256sum
		done) || true
	fi
}
sig=$(inputs | sha256sum | cut -c1-16)

if [ ! -f "$tree/.nfs-swap-inputs" ] || [ "$(cat "$tree/.nfs-swap-inputs")" != "$sig" ]; then
	echo "kernel.sh ($variant): preparing the tree from $TARBALL"
	rm -rf "$tree" "$dest/extract"
	mkdir -p "$dest/extract"
	tar -C "$dest/extract" -xJf "$TARBALL"
	mv "$dest/extract"/linux-source-* "$tree"
	rmdir "$dest/extract"
	have=$(make -s -C "$tree" kernelversion)
	if [ "$have" != "$KERNEL_VERSION" ]; then
		echo "kernel.sh ($variant): WARNING: $TARBALL is Linux $have;" \
		     "the series was made against $KERNEL_VERSION (build/BASE)" >&2
	fi
	if [ "$kind" != stock ]; then
		for d in $kdirs; do
			[ -d "$root/$d" ] && cp -r "$root/$d" "$tree/"
		done
		if [ -f "$series" ]; then
			n=$(series_patches | wc -l)
			if [ "${upto:-$without}" -gt "$n" ] 2>/dev/null; then
				rm -rf "$tree"
				die "patches/series has only $n patches, no patch ${upto:-$without}"
			fi
			variant_patches | while read -r p; do
				[ -f "$root/patches/$p" ] || die "patches/series names $p, which does not exist"
				if ! patch -d "$tree" -p1 -s -N --fuzz=0 --no-backup-if-mismatch \
				     --dry-run <"$root/patches/$p" >"$dest/patch.err" 2>&1; then
					cat "$dest/patch.err" >&2
					die "patches/$p does not apply to Linux $have (the series is made against $KERNEL_VERSION): rebase it"
				fi
				patch -d "$tree" -p1 -s -N --fuzz=0 --no-backup-if-mismatch <"$root/patches/$p"
				echo "kernel.sh ($variant): applied $p"
			done
		fi
	fi
	echo "$sig" >"$tree/.nfs-swap-inputs"
	rm -f "$tree/.config"
fi

export KBUILD_BUILD_TIMESTAMP="2026-01-01" KBUILD_BUILD_USER=nfs-swap KBUILD_BUILD_HOST=$variant
export CCACHE_BASEDIR=$root/out/kernel CCACHE_NOHASHDIR=1
cc=gcc
command -v ccache >/dev/null && cc="ccache gcc"
jobs=$(nproc)

if [ ! -f "$tree/.config" ]; then
	make -C "$tree" -s CC="$cc" tinyconfig >"$log" 2>&1 || die "make tinyconfig failed, see $log"
	# shellcheck disable=SC2086 # $frags: the @CONFIG files, in order
	(cd "$tree" && scripts/kconfig/merge_config.sh -m .config "$root/build/guest.config" $frags) >>"$log" 2>&1 ||
		die "merge_config.sh failed, see $log"
	make -C "$tree" -s CC="$cc" olddefconfig >>"$log" 2>&1 || die "make olddefconfig failed, see $log"
	# Every symbol the fragments ask for must have stuck (the last
	# fragment that names a symbol decides, as in merge_config.sh).
	for f in "$root/build/guest.config" $frags; do
		sed -n "s|^\(CONFIG_[A-Z0-9_]*\)=\(.*\)|\1 ${f#"$root"/} \2|p" "$f"
	done | awk '{ if (!($1 in line)) k[++n] = $1; line[$1] = $0 }
		END { for (i = 1; i <= n; i++) print line[k[i]] }' |
	while read -r sym from val; do
		if [ "$val" = n ]; then
			! grep -q "^$sym=[ym]" "$tree/.config" || die "$sym is set although $from says n"
		else
			grep -qx "$sym=$val" "$tree/.config" ||
				die "$sym=$val from $from did not stick (missing dependency?)"
		fi
	done
fi

echo "kernel.sh ($variant): building bzImage (log: $log)"
start=$(date +%s)
if ! make -C "$tree" -j"$jobs" CC="$cc" bzImage >>"$log" 2>&1; then
	grep -E 'error|Error' "$log" | tail -20 >&2
	die "build failed, see $log"
fi
cp "$tree/arch/x86/boot/bzImage" "$dest/bzImage"
cp "$tree/.config" "$dest/config"
made_of >"$dest/made-of"
echo "kernel.sh ($variant): $dest/bzImage ($(make -s -C "$tree" kernelversion), $(( $(date +%s) - start )) s)"
