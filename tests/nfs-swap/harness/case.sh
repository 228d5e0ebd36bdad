# Sourced by every test case (tests/nfs-swap/cases/*).  Gives a case:
#   $RUN        its own directory for exports, logs and results
#   make_swapfile PATH SIZE      preallocated file with a swap signature
#   guest_run [run-guest options] <<'PLAN' ... PLAN
#               boot a guest on $VARIANT's kernel running the plan; sets
#               $guest_status (completed|lockup|deadline|died) and fills
#               $RUN/guest.result (guest_boot ... & + guest_collect RC:
#               the same with the guest in the background)
#   guest_verdict                 0 when the guest finished its plan with
#               every check ok, no kernel WARNING/BUG/Oops; else says why
#   needs_config NAME             stop unless the kernel has what
#               build/guest-NAME.config adds; NST_NIC=MODEL: the guest's
#               network device (run-guest --nic)
# and stops whatever servers the case started when it exits, however.
# Exit status of a case: 0 pass, 1 fail, 2 the harness itself failed.
set -eu
NST_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
NST_SUITE=$NST_TOP/tests/nfs-swap
CASE=${NST_CASE:-$(basename "$0")}	# bench/run names its runs
VARIANT=${VARIANT:-patched}
KERNEL=${KERNEL:-$NST_TOP/out/kernel/$VARIANT/bzImage}
INITRD=${INITRD:-$NST_TOP/out/guest/initramfs.cpio.gz}
RUN=${NST_RUNS:-$NST_TOP/out/runs/manual}/$CASE
# the NFS server exports paths under it: they must be absolute
case $RUN in /*) ;; *) RUN=$PWD/$RUN;; esac
guest_status=

# Every case runs at default settings: the functional cases (swapoff,
# two files on a mount, EBUSY) raised vm.min_free_kbytes to 16384 by hand
# until the kernel sized its reserves itself (patches 0006-0008).

die() { echo "$CASE: harness error: $*" >&2; exit 2; }
# long_case: a case for the rates of issue 3 (more transports, orders and
# shapes) that would take the suite past its time budget: skipped unless
# NST_LONG=1 (tests/nfs-swap/compare sets it).
long_case() {
	[ -n "${NST_LONG:-}" ] && return 0
	echo "$CASE: skipped: a long case; run it with NST_LONG=1 or tests/nfs-swap/compare"
	exit 77
}
fail() { echo "$CASE: FAIL: $*"; exit 1; }
# needs_config NAME: the case needs what build/guest-NAME.config adds to
# the guest kernel (a device, IPv6); stops with what to run instead when
# $VARIANT's kernel was not configured with it.
needs_config() {
	local frag=$NST_TOP/build/guest-$1.config sym config
	config=$(dirname "$KERNEL")/config
	for sym in $(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$/\1/p' "$frag"); do
		grep -qx "$sym=y" "$config" 2>/dev/null ||
			die "$VARIANT's kernel has no $sym: this case needs build/guest-$1.config (VARIANT=$VARIANT@$1, or tests/nfs-swap/compare -k $VARIANT@$1)"
	done
}

. "$NST_SUITE/harness/server.sh"

[ -f "$KERNEL" ] || die "no kernel at $KERNEL: run 'make kernel' first"
[ -f "$INITRD" ] || die "no initramfs at $INITRD: run 'make initramfs' first"
rm -rf "$RUN"
mkdir -p "$RUN"
swapfiles=
# A case that runs its guest in the background (guest_run ... &) to act
# on the host meanwhile puts the job's pid here: a case that stops early
# stops that guest too, so that no guest outlives its case.
guest_bg=
# Logs are kept; the swap images (up to 1.3 GB each) are not.
trap '[ -z "$guest_bg" ] || pkill -TERM -P "$guest_bg"
	servers_stop; [ -z "$swapfiles" ] || rm -f $swapfiles' EXIT
trap 'exit 130' INT TERM

make_swapfile() {	# make_swapfile PATH SIZE (fallocate's: 512M, 64K)
	fallocate -l "$2" "$1" || die "cannot allocate $2 for $1"
	swapfiles="$swapfiles $1"
	chmod 600 "$1"
	mkswap "$1" >/dev/null || die "mkswap $1 failed"
}

# guest_boot [run-guest options] <<PLAN: boot a guest on the plan and
# wait for it; its exit code is run-guest's.  guest_run is this plus
# guest_collect; a case that acts on the host meanwhile runs guest_boot in
# the background and calls guest_collect with its exit code.
guest_boot() {
	local plan=$RUN/plan.sh
	{
		echo "# plan of $CASE, run by tests/nfs-swap/harness/case.sh"
		echo "NST_EXPORT='${NST_EXPORT-}' NST_EXPORT_RO='${NST_EXPORT_RO-}'"
		echo "NST_MNT_PORT=$NST_MNT_PORT NST_NBD_PORT=$NST_NBD_PORT"
		cat
	} >"$plan"
	echo "$CASE: booting $VARIANT kernel, log: $RUN/guest.log"
	"$NST_SUITE/harness/run-guest" --kernel "$KERNEL" --initrd "$INITRD" \
		--plan "$plan" --log "$RUN/guest.log" --result "$RUN/guest.result" \
		--on-stall "$NST_SUITE/harness/host-state '$RUN'" ${NST_NIC:+--nic "$NST_NIC"} "$@"
}

guest_collect() {	# guest_collect RC: RC is guest_boot's exit code
	[ -f "$RUN/guest.result" ] || die "run-guest failed (exit $1) before writing a result"
	guest_status=$(result status)
}

guest_run() {
	local rc=0
	guest_boot "$@" || rc=$?
	guest_collect $rc
}

result() { sed -n "s/^$1=//p" "$RUN/guest.result" | head -1; }

guest_verdict() {
	local why=
	case $guest_status in
	completed) ;;
	lockup) why="LOCKUP: no progress for the progress timeout (stacks in $RUN/guest.log)";;
	deadline) why="DEADLINE: the run did not finish in time (stacks in $RUN/guest.log)";;
	*) why="the guest died before finishing its plan (see $RUN/guest.log)";;
	esac
	if [ -z "$why" ] && [ "$(result end_rc)" != 0 ]; then
		why="the plan stopped with rc=$(result end_rc)"
	fi
	if [ "$(result checks_failed)" != 0 ]; then
		why="${why:+$why; }$(result checks_failed) failed checks: $(grep -a 'NST CHECK FAIL' "$RUN/guest.log" | sed 's/.*NST CHECK FAIL //' | tr '\n' ';')"
	fi
	if [ "$(result checks_ok)" = 0 ] && [ -z "$why" ]; then
		why="the plan made no checks"
	fi
	if [ "$(result kernel_errors)" != 0 ]; then
		why="${why:+$why; }kernel reported $(result kernel_errors) errors: $(result kernel_error)"
	fi
	sed -n 's/^workload=/workload: /p' "$RUN/guest.result"
	echo "guest: status=$guest_status elapsed=$(result elapsed)s checks ok=$(result checks_ok) failed=$(result checks_failed)"
	[ -z "$why" ] && return 0
	echo "$CASE: FAIL: $why"
	return 1
}
