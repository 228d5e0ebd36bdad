# Test bodies shared by several cases that differ only in transport or
# NFS version (sourced after case.sh).  Each case file stays one line of
# configuration plus a call.

# SYSCTLS="vm.min_free_kbytes=16384 ...": hand tuning, for comparisons;
# the plan lines that set them.
plan_sysctls() {
	local s
	for s in ${SYSCTLS:-}; do echo "nst_sysctl ${s%%=*} ${s#*=}"; done
}

# The swap area a file of MB megabytes gives: all pages but the header.
swap_kb() { echo $(( ($1 * 256 - 1) * 4 )); }

# case_options FN NAME... -- ARG...: the named options of a case body.
# Each ARG is NAME=N, N a positive whole number, for one of the NAMEs;
# it sets the variable NAME, which the caller has declared local with
# its default.  Anything else fails the case, naming FN and the options
# it takes.
case_options() {
	local fn=$1 names=" " arg
	shift
	while [ "$1" != -- ]; do names+="$1 "; shift; done
	shift
	for arg; do
		[[ $arg =~ ^([a-z_]+)=([1-9][0-9]*)$ && $names == *" ${BASH_REMATCH[1]} "* ]] ||
			fail "$fn: '$arg' is none of$(printf ' %s=N' $names) (N from 1)"
		printf -v "${BASH_REMATCH[1]}" %s "${BASH_REMATCH[2]}"
	done
}

# swapon over NFS version VERS, /proc/swaps shows the right size; a
# workload is pushed out to the NFS swapfile, then swapoff runs while it
# verifies its pages: every page must come back intact.
case_swapoff_under_load() {
	local vers=$1 mb=512
	nfs_server_start
	make_swapfile "$NST_EXPORT/swapfile" ${mb}M
	guest_run --mem 256 --cpus 2 --deadline 1200 <<PLAN
nst_mount_nfs $vers /mnt
nst_check "swapon of a file on NFSv$vers" swaptool on /mnt/swapfile
nst_swaps
nst_check "/proc/swaps shows $(swap_kb $mb) kB" [ "\$(nst_swap_kb /mnt/swapfile size)" = $(swap_kb $mb) ]
workload -p 4 -m 96 -n 3 -r /tmp/ready -g /tmp/go &
held=\$!
while [ ! -e /tmp/ready ]; do sleep 1; done
nst_check "pressure workload (256 MB) completes intact" workload -p 8 -m 256 -n 1
nst_swaps
used=\$(nst_swap_kb /mnt/swapfile used)
nst_check "pages are out on the NFS swapfile (\$used kB)" [ "\$used" -gt 16384 ]
touch /tmp/go
nst_check "swapoff while the workload runs" swaptool off /mnt/swapfile
nst_check "the swap area is gone from /proc/swaps" [ -z "\$(nst_swap_kb /mnt/swapfile size)" ]
wait \$held && rc=0 || rc=\$?
nst_check "the held workload got every page back intact" [ \$rc = 0 ]
PLAN
	guest_verdict
}

# The NFS server restarts while the guest swaps to it over NFS version
# VERS: once 15000 pages are out, nfs-ganesha is killed (as a crash would)
# and comes back 10 s later.  The workload must get every page back, the
# client must reconnect and swap both ways afterwards, and the kernel's
# reserve must count the new socket as it counted the old one (patched
# kernels; the stock one has no /proc/reserve_info).  While the server
# is away, the client may try to connect at most twice a second (plus
# 10): fails without "sunrpc: wait before a swapper connects again after
# a failed connect", where each refused connect is followed at once by
# the next (72-231 in 16-19 s).  The guest asks for the restart on its
# console; the host answers through the export.  MEM and CPUS give the
# guest's shape (256 MB, 2 CPUs).
case_server_restart() {
	local vers=$1 down=10
	nfs_server_start
	make_swapfile "$NST_EXPORT/swapfile" 1024M
	echo 0 >"$NST_EXPORT/restarts"
	boot_serving_restart "nfs_server_restart $down; echo 1 >$NST_EXPORT/restarts" \
		--mem "${MEM:-256}" --cpus "${CPUS:-2}" --deadline 900 <<PLAN
nst_mount_nfs $vers /mnt
nst_check "swapon /mnt/swapfile" swaptool on /mnt/swapfile
nst_reserve_report
users0=\$(nst_reserve net.users) total0=\$(nst_reserve total_kb) c0=\$(nst_nfs_connects /mnt)
workload -x 2 -n 1 &
w=\$!
nst_wait_pswpout 15000 \$w
ca=\$(nst_nfs_connects /mnt) ta=\$(nst_uptime)
nst_log RESTART-SERVER pswpout=\$(nst_vmstat pswpout) connects=\$ca
i=0
while [ "\$(cat /mnt/restarts)" != 1 ] && [ \$i -lt 300 ]; do sleep 1; i=\$((i + 1)); done
nst_check "the host restarted the NFS server" [ "\$(cat /mnt/restarts)" = 1 ]
out1=\$(nst_vmstat pswpout) in1=\$(nst_vmstat pswpin)
cb=\$(nst_nfs_connects /mnt) away=\$((\$(nst_uptime) - ta))
nst_log RESTARTED pswpout=\$out1 pswpin=\$in1 connects=\$cb
nst_check "at most 2 connects a second (+10) while the server was away (\$((cb - ca)) in \$away s)" [ \$((cb - ca)) -le \$((2 * away + 10)) ]
wait \$w && rc=0 || rc=\$?
nst_check "the workload (2 x RAM, 1 verifying pass) got every page back intact across the restart" [ \$rc = 0 ]
c1=\$(nst_nfs_connects /mnt)
nst_check "the client reconnected (\$c0 -> \$c1 connects)" [ "\$c1" -gt "\$c0" ]
nst_check_since_restart \$out1 \$in1 10000
nst_check_reserve_as_before "\$users0" "\$total0"
nst_check "swapoff /mnt/swapfile" swaptool off /mnt/swapfile
PLAN
	guest_verdict
}

# The NBD server restarts while the guest swaps to /dev/nbd0, connected
# through netlink by "nbd-connect -p" (as by "nbd-client -persist"):
# once 15000 pages are out, nbd-server is killed (as a crash would) and
# comes back 10 s later.  Swap I/O waits for a new connection (the
# device's dead-connection timeout), the client hands the kernel a new
# socket (NBD_CMD_RECONFIGURE), and the workload must get every page
# back.  On patched kernels the reserve must count the new socket in
# place of the old one while connected, and have both shares back after
# the disconnect: fails without "nbd: give back the reserve share of the
# sockets it lets go" (the replaced socket keeps its share).  No
# request may wait for its 30 s block timer: fails, in 5 runs of 6,
# without "nbd: requeue the requests of a replaced socket at once" (the
# writes in flight on the old connection wait for it).  MEM and CPUS
# give the guest's shape (256 MB, 2 CPUs).
case_nbd_server_restart() {
	swap_target nbd-netlink 1024
	boot_serving_restart "nbd_server_restart 10" --mem "${MEM:-256}" --cpus "${CPUS:-2}" --deadline 900 <<PLAN
nst_check "connect $dev through netlink, reconnecting" $setup || exit 1
nst_check "swapon $dev" swaptool on $dev
nst_reserve_report
mfk=\$(cat /proc/sys/vm/min_free_kbytes)
users0=\$(nst_reserve net.users) total0=\$(nst_reserve total_kb)
reconnects() { dmesg | grep -c "nbd0: reconnected socket"; }
reconnected() { [ "\$(reconnects)" -ge 1 ]; }
workload -x 2 -n 1 &
w=\$!
nst_wait_pswpout 15000 \$w
out1=\$(nst_vmstat pswpout) in1=\$(nst_vmstat pswpin)
nst_log RESTART-SERVER pswpout=\$out1 pswpin=\$in1
killed=\$(nst_uptime)
nst_wait 300 "the client reconnected to the restarted server" reconnected
nst_log RECONNECTED pswpout=\$(nst_vmstat pswpout) pswpin=\$(nst_vmstat pswpin)
wait \$w && rc=0 || rc=\$?
nst_check "no page came back corrupt across the restart" [ \$rc != 1 ]
nst_check "every workload process lived to verify its pages (rc \$rc; 2: one died, as of a failed swap-in)" [ \$rc = 0 ]
nst_check "one reconnect (\$(reconnects))" [ "\$(reconnects)" = 1 ]
# Requests sent on the old connection just before the kill wait for
# their block timer (30 s) unless the reconnect requeued them: look
# once the timer has run out for them.
stuck() { dmesg | grep -c "Possible stuck request"; }
timer_ran_out() { [ "\$(nst_uptime)" -ge \$((killed + 40)) ]; }
nst_wait 60 "40 s since the kill" timer_ran_out
nst_check "no request waited for its 30 s block timer (\$(stuck) 'Possible stuck request')" [ "\$(stuck)" = 0 ]
# The old connection is dead from the kill on, within a second of
# RESTART-SERVER (at most some 7000 pages out here): the rest went over
# the new one.
nst_check_since_restart \$out1 \$in1 30000
nst_check_reserve_as_before "\$users0" "\$total0"
nst_check "swapoff $dev" swaptool off $dev
nst_check "disconnect $dev" nbd-connect -d $dev
if [ -n "\$users0" ]; then
	nst_wait 30 "both sockets gave their shares back" nst_reserve_no_net
	nst_reserve_report
	nst_check "net.users 0, the reserve min_free_kbytes (\$mfk kB) again" nst_reserve_no_net
fi
PLAN
	guest_verdict
}

# boot_serving_restart "COMMAND" [run-guest options] <<PLAN: guest_boot
# in the background; when the plan logs "NST RESTART-SERVER", this
# shell (which owns the servers) runs COMMAND, once.
boot_serving_restart() {
	local restart=$1 plan gpid rc
	shift
	plan=$(cat)
	guest_boot "$@" <<<"$plan" &
	gpid=$!
	guest_bg=$gpid
	while kill -0 $gpid 2>/dev/null; do
		if grep -aq "NST RESTART-SERVER" "$RUN/guest.log" 2>/dev/null; then
			eval "$restart"
			break
		fi
		sleep 1
	done
	wait $gpid && rc=0 || rc=$?
	guest_bg=
	guest_collect $rc
}

# swap_target TRANSPORT MB: start the server of a swap target of MB
# megabytes and set what a plan needs to use it: $dev (the swap device or
# file in the guest), $setup (the plan line that makes it reachable),
# $mountpoint (the NFS mount, or empty), $disk_opts (run-guest options).
# TRANSPORT: nfs3, nfs4.0, nfs4.1, nfs4.2 (each also as nfsV-ipv6: over
# IPv6, on a kernel with build/guest-net6.config), nbd, nbd-netlink
# (connected through netlink, reconnecting: nbd-connect -p), or local
# (virtio-blk).
swap_target() {
	local transport=$1 mb=$2
	mountpoint= disk_opts=
	case $transport in
	nfs*-ipv6)	# the same over IPv6: see nst_net6 and NST_SERVER_BIND
		NST_SERVER_BIND=::1 swap_target "${transport%-ipv6}" "$mb"
		setup="nst_net6; $setup"
		;;
	nfs*)
		nfs_server_start
		make_swapfile "$NST_EXPORT/swapfile" "${mb}M"
		dev=/mnt/swapfile mountpoint=/mnt
		setup="nst_mount_nfs ${transport#nfs} /mnt"
		;;
	nbd|nbd-netlink)	# nbd-netlink: see nbd-connect -p
		make_swapfile "$RUN/nbd-swap.img" "${mb}M"
		nbd_server_start "$RUN/nbd-swap.img"
		dev=/dev/nbd0
		setup="nbd-connect \$NST_HOST $NST_NBD_PORT swap /dev/nbd0"
		[ "$transport" = nbd ] || setup="nbd-connect -p${setup#nbd-connect}"
		;;
	local)
		make_swapfile "$RUN/local-swap.img" "${mb}M"
		dev=/dev/vda setup=: disk_opts="--disk $RUN/local-swap.img"
		;;
	*) die "unknown transport $transport (nfs3 nfs4.0 nfs4.1 nfs4.2, any of them -ipv6; nbd nbd-netlink local)";;
	esac
}

# The workload of "Swap-over-NBD without deadlocking" (seed 000): 8
# processes per CPU touching 4 x RAM, 3 passes, at default settings (no
# sysctl touched unless SYSCTLS says so), to completion with every page
# intact.  MEM and CPUS give the guest's shape (256 MB, 2 CPUs).
# TRANSPORT: see swap_target.  ORDER: linear|random.
case_seed_workload() {
	local transport=$1 order=${2:-linear} mem=${MEM:-256} cpus=${CPUS:-2}
	local dev setup mountpoint disk_opts
	swap_target "$transport" $(( mem * 5 ))
	# The work grows with RAM: 1500 s up to 256 MB (the slowest run at
	# 256 MB took 746 s), in proportion above (a run at 512 MB / 4 vCPUs
	# took 1393 s).  A lockup ends the run long before: no progress for
	# run-guest's progress timeout.
	# shellcheck disable=SC2086
	guest_run --mem "$mem" --cpus "$cpus" --deadline $(( 1500 * (mem > 256 ? mem : 256) / 256 )) $disk_opts <<PLAN
$(plan_sysctls)
$setup
nst_check "swapon $dev" swaptool on $dev
nst_swaps
nst_reserve_report
nst_check "seed workload (8 x CPUs processes, 4 x RAM, 3 passes, $order) intact" \
	workload -x 4 -n 3 -a $order
nst_swaps
nst_reserve_report
nst_check "swapoff $dev" swaptool off $dev
PLAN
	local rc=0 last
	guest_verdict || rc=$?
	last=$(grep -a 'NST \(PROGRESS\|WORKLOAD result\)' "$RUN/guest.log" | tail -1 | sed 's/.*NST //')
	cat <<SUMMARY
== $CASE on the $VARIANT kernel: $(grep -a -o 'NST BOOT.*' "$RUN/guest.log" | head -1 | sed 's/NST BOOT //')
ran:      seed workload (8 x CPUs processes, 4 x RAM, 3 passes, $order) over $transport, ${mem} MB guest, $cpus CPUs, sysctls: ${SYSCTLS:-defaults}
outcome:  $(case $guest_status in completed) [ $rc = 0 ] && echo completed || echo "completed with failures";; lockup) echo "LOCKUP (no progress for the progress timeout)";; *) echo "$guest_status";; esac)
time:     $(result elapsed) s for the whole guest run
last:     $last
reserve:  $(grep -a -o 'NST RESERVE.*' "$RUN/guest.log" | tail -1 | sed 's/NST RESERVE //')
watch:    $(grep -a -o 'NST WATCH t=[0-9]* free_kb.*' "$RUN/guest.log" | tail -1 | sed 's/NST WATCH //')
log:      $RUN/guest.log
SUMMARY
	return $rc
}

# An admin raises vm.min_free_kbytes to 64 MB while the seed workload
# (ram=N x RAM, 4 when not given; passes=N verifying passes after the
# stamping, 2 when not given) swaps over TRANSPORT (see swap_target).
# The raise comes 20000 pages into the stamping, so the window of
# reserve-only allocations after it is the same for any passes.  Free
# memory is then far below the new GFP_ATOMIC floor (3/8 of min) until
# reclaim catches up, so for a while only allocations that may use the
# reserves succeed: every allocation that swap-out needs on its way to
# the wire, also where the device's transmit path copies a one-MSS
# retransmit (validate_xmit_skb), must be one of them.  The workload
# must complete with every page intact, the guest must not have dropped
# a packet on transmit, and no allocation of TCP's transmit path may
# have failed (the kernel prints a failure's call trace; one in 10 s at
# most, so a case may miss one).
# With max_percent=N, PF_MEMALLOC tasks must also have taken less than
# N % of the bytes swapped out from the reserve (nst_check_reserve_share):
# in that window a copy of the swap pages on their way out would come
# from it.
# Usage: case_raise_min_free TRANSPORT [ram=N] [passes=N] [max_percent=N]
case_raise_min_free() {
	local transport=$1 ram=4 passes=2 max_percent= mem=${MEM:-256} cpus=${CPUS:-2}
	local dev setup mountpoint disk_opts mark=: share=:
	shift
	case_options case_raise_min_free ram passes max_percent -- "$@"
	if [ -n "$max_percent" ]; then
		mark=nst_reserve_mark share="nst_check_reserve_share $max_percent $transport"
	fi
	swap_target "$transport" $(( mem * (ram + 1) ))
	guest_run --mem "$mem" --cpus "$cpus" --deadline 900 <<PLAN
$(plan_sysctls)
$setup
nst_check "swapon $dev" swaptool on $dev
nst_reserve_report
$mark
workload -x $ram -n $passes &
w=\$!
nst_wait_pswpout 20000 \$w
out0=\$(nst_vmstat pswpout)
nst_log RAISE pswpout=\$out0 free_kb=\$(nst_meminfo MemFree)
nst_sysctl vm.min_free_kbytes 65536
wait \$w && rc=0 || rc=\$?
nst_check "seed workload ($ram x RAM, passes: $passes) intact across the raise" [ \$rc = 0 ]
out=\$((\$(nst_vmstat pswpout) - out0))
nst_check "it swapped out after the raise (\$out pages)" [ \$out -gt 50000 ]
drops=\$(nst_netdev eth0 tx_dropped)
nst_check "eth0 dropped no packet on transmit (\$drops)" [ "\$drops" = 0 ]
fails=\$(nst_alloc_failures tcp_write_xmit __tcp_retransmit_skb tcp_send_loss_probe)
nst_check "no allocation of a TCP transmit failed (the swap socket is the only busy one)\${fails:+: \$fails}" [ -z "\$fails" ]
$share
nst_reserve_report
nst_check "swapoff $dev" swaptool off $dev
PLAN
	guest_verdict
}

# Bad input: swapon of the file NAME in the export must fail with ERRNO
# and the kernel message MSG (when not empty), leave the file exactly as it was, and leave
# no swap area behind.  The file is prepared by the caller.
case_bad_swapon() {
	local name=$1 errno=$2 msg=$3 export=${4:-$NST_EXPORT} before why=
	before=$(sha256sum <"$export/$name")
	[ -z "$msg" ] || why="nst_check \"the kernel says why: '$msg'\" nst_dmesg_has \"$msg\""
	guest_run --mem 256 --cpus 2 --deadline 300 <<PLAN
nst_mount_nfs 4.2 /mnt $export
nst_expect_error $errno "swapon of $name" swaptool on /mnt/$name
$why
nst_check "no swap area is left behind" [ -z "\$(tail -n +2 /proc/swaps)" ]
PLAN
	guest_verdict || return 1
	[ "$(sha256sum <"$export/$name")" = "$before" ] ||
		fail "$name was changed by the failed swapon"
	echo "$name: unchanged on the server"
}

# Request size of swap to NFSv4.2 at default settings: a linear workload
# of twice the guest's RAM, verified, by N processes (procs=N; the
# workload's default, 8 per CPU, when not given) over N verifying passes
# after the stamping (passes=N; 2 when not given); the swap traffic of
# OP (read: pages swapped in per READ RPC, write: out per WRITE) must
# average more than MIN_TENTHS / 10 pages per RPC.  With max_percent=N,
# what tasks running with PF_MEMALLOC took from the emergency reserve
# over the workload (charged.pf_memalloc_kb of /proc/reserve_info) must
# also stay under N % of the bytes swapped out in that time.
# Usage: case_request_size OP MIN_TENTHS [procs=N] [passes=N] [max_percent=N]
case_request_size() {
	local op=$1 min_tenths=$2 procs= passes=2 max_percent= counter OP=${1^^}
	local mark=: share=:
	shift 2
	case_options case_request_size procs passes max_percent -- "$@"
	case $op in
	read) counter=pswpin;;
	write) counter=pswpout;;
	*) fail "case_request_size: OP is read or write, not '$op'";;
	esac
	if [ -n "$max_percent" ]; then
		mark=nst_reserve_mark share="nst_reserve_report; nst_check_reserve_share $max_percent 'the NFS swapfile'"
	fi
	nfs_server_start
	make_swapfile "$NST_EXPORT/swapfile" 1024M
	guest_run --mem 256 --cpus 2 --deadline 900 <<PLAN
rpcs() { nst_nfs_op /mnt $op | cut -d' ' -f1; }	# $OP RPCs so far
nst_mount_nfs 4.2 /mnt
nst_check "vm.page-cluster is the default, 3" [ "\$(cat /proc/sys/vm/page-cluster)" = 3 ]
nst_check "swapon /mnt/swapfile" swaptool on /mnt/swapfile
$mark
p0=\$(nst_vmstat $counter) r0=\$(rpcs)
nst_check "linear workload (2 x RAM, passes: $passes) intact" workload -x 2 -n $passes ${procs:+-p $procs}
pages=\$((\$(nst_vmstat $counter) - p0)) n=\$((\$(rpcs) - r0))
echo "$counter: \$pages pages in \$n ${OP}s"
nst_check "pages went through the NFS swapfile (\$pages)" [ "\$pages" -gt 10000 ]
nst_check "more than $((min_tenths / 10)).$((min_tenths % 10)) pages per $OP (\$pages pages / \$n ${OP}s)" \\
	[ \$((10 * pages)) -gt \$(($min_tenths * n)) ]
$share
nst_check "swapoff /mnt/swapfile" swaptool off /mnt/swapfile
PLAN
	guest_verdict
}
