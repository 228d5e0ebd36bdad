# Shell library for guest plans (sourced by /init before /plan).
# Every report is one line starting "NST <KIND>" on the console; the host
# (harness/run-guest) reads them.  A plan asserts with nst_check; the run
# passes only if every check is ok and the plan reaches its end.

NST_HOST=10.0.2.2

nst_log() { echo "NST $*"; }

nst_arg() {	# value of nst.NAME= on the kernel command line
	sed -n "s/.*nst\.$1=\([^ ]*\).*/\1/p" /proc/cmdline
}

# nst_check DESCRIPTION COMMAND...: run COMMAND, report ok or FAIL.
nst_check() {
	desc=$1; shift
	if "$@"; then
		nst_log CHECK ok "$desc"
	else
		nst_log CHECK FAIL "$desc"
		return 1
	fi
}

nst_boot() {
	want=$(nst_arg cpus)
	have=$(grep -c ^processor /proc/cpuinfo)
	mem=$(nst_meminfo MemTotal)
	nst_log BOOT cpus=$have want_cpus=$want mem_kb=$mem \
		kernel=$(uname -r) min_free_kbytes=$(cat /proc/sys/vm/min_free_kbytes)
	nst_check "guest sees $want CPUs" [ "$have" = "$want" ]
	ifconfig lo 127.0.0.1 up
	ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
	# e1000 and 8139cp report the link from a watchdog a second or two
	# later; what is sent before that is dropped (and counted in
	# tx_dropped, which cases check), as a real client would wait for it
	nst_wait 30 "eth0 has a link" grep -qsx 1 /sys/class/net/eth0/carrier || return 1
	nst_log LINK eth0 carrier after $nst_waited s
}

# nst_wait SECS WHAT CMD...: run CMD once a second until it succeeds,
# at most SECS times more; then CHECK FAIL "WHAT" and status 1.
# $nst_waited: the seconds it took.
nst_wait() {
	secs=$1 what=$2
	shift 2
	nst_waited=0
	until "$@"; do
		[ $nst_waited -lt "$secs" ] || { nst_log CHECK FAIL "$what: not within $secs s"; return 1; }
		sleep 1; nst_waited=$((nst_waited + 1))
	done
}

# nst_addr6: eth0's IPv6 addresses beyond its link, DAD done.
# if_inet6: address ifindex prefixlen scope flags name; scope 10 is host,
# 20 link (the others: 00 global, 40 site, which QEMU's fec0:: is), flag
# 0x40 tentative (DAD not done)
nst_addr6() {
	awk '$6 == "eth0" && $4 != "10" && $4 != "20" && !and(("0x" $5) + 0, 64) { print $1 }' \
		/proc/net/if_inet6 2>/dev/null
}
nst_has_addr6() { [ -n "$(nst_addr6)" ]; }

# nst_net6: reach the host over IPv6 from here on (NST_HOST=fec0::2,
# which QEMU's user network takes to the host's ::1): wait until eth0 has
# an address beyond its link from the router advertisement (SLAAC, DAD
# done).
# Needs a kernel with IPv6 (build/guest-net6.config).
nst_net6() {
	[ -e /proc/net/if_inet6 ] || { nst_log CHECK FAIL "this kernel has no IPv6 (build/guest-net6.config)"; return 1; }
	nst_wait 30 "eth0 has an IPv6 address beyond its link" nst_has_addr6 || {
		sed 's/^/if_inet6: /' /proc/net/if_inet6
		return 1
	}
	NST_HOST=fec0::2
	nst_log NET6 "$(nst_addr6)" host=$NST_HOST
}

# nst_mount_nfs VERS DIR: mount the run's export (NST_EXPORT, set by the
# host in the plan) with NFS version 3, 4.0, 4.1 or 4.2, from NST_HOST
# (IPv4, or IPv6 after nst_net6).
nst_mount_nfs() {
	vers=$1 dir=$2 export=${3:-$NST_EXPORT} src=$NST_HOST any=0.0.0.0
	case $NST_HOST in *:*) src="[$NST_HOST]" any=::;; esac
	mkdir -p "$dir"
	case $vers in
	3) opts="vers=3,proto=tcp,nolock,addr=$NST_HOST,mountaddr=$NST_HOST,mountproto=tcp,mountport=$NST_MNT_PORT";;
	# clientaddr=0.0.0.0 (::): no NFSv4.0 callback channel, so the server
	# never connects out to the guest's address.
	4.*) opts="vers=$vers,addr=$NST_HOST,clientaddr=$any";;
	*) nst_log CHECK FAIL "unknown NFS version $vers"; return 1;;
	esac
	swaptool mount "$src:$export" "$dir" nfs "$opts"
}

# nst_swaps: one line per active swap area: NST SWAPS file size_kb used_kb prio
nst_swaps() {
	tail -n +2 /proc/swaps | while read -r f type size used prio; do
		nst_log SWAPS "$f" size_kb=$size used_kb=$used prio=$prio
	done
}

# nst_swap_kb FILE size|used: from /proc/swaps, empty when not active
nst_swap_kb() {
	awk -v f="$1" -v col="$2" \
	    '$1 == f { print (col == "size" ? $3 : $4) }' /proc/swaps
}

nst_vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
nst_meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }	# kB
nst_uptime() { cut -d. -f1 /proc/uptime; }	# whole seconds since boot
# nst_wait_pswpout PAGES PID: until PAGES pages are swapped out since
# boot, or process PID has ended
nst_wait_pswpout() {
	while [ "$(nst_vmstat pswpout)" -lt "$1" ] && kill -0 "$2" 2>/dev/null; do
		sleep 1
	done
}
# nst_netdev DEV COUNTER: a counter of /sys/class/net/DEV/statistics
# (tx_dropped counts what the core transmit path dropped too)
nst_netdev() { cat "/sys/class/net/$1/statistics/$2"; }

nst_sysctl() { echo "$2" >"/proc/sys/${1//.//}"; nst_log SYSCTL "$1=$2"; }

# nst_expect_error ERRNO DESCRIPTION COMMAND...: the command must fail and
# report that errno (swaptool prints it).
nst_expect_error() {
	want=$1 desc=$2; shift 2
	out=$("$@") && rc=0 || rc=$?
	echo "$out"
	nst_check "$desc: fails with $want" \
		[ $rc -ne 0 -a -n "$(echo "$out" | grep "errno=$want ")" ]
}

# nst_dmesg_has PATTERN: the kernel said it (for clear error messages)
nst_dmesg_has() { dmesg | grep -q "$1"; }

# nst_alloc_failures FN...: the "page allocation failure" lines of the
# kernel log whose call trace passes through one of the functions FN.
# The kernel prints at most one such failure in 10 s (warn_alloc's
# ratelimit): an empty answer means none was printed, not none happened.
nst_alloc_failures() {
	dmesg | awk -v fns=" $* " '
		/page allocation failure/ { cur = $0; next }
		cur == "" { next }
		/<\/TASK>/ { cur = ""; next }
		match($0, /[A-Za-z0-9_.]+\+0x[0-9a-f]+\/0x/) {
			fn = substr($0, RSTART, RLENGTH)
			sub(/\+.*/, "", fn)
			if (index(fns, " " fn " ")) { print cur; cur = "" }
		}'
}

# nst_reserve KEY: a value from /proc/reserve_info (patched kernels),
# empty when the kernel has no such file or key
nst_reserve() {
	[ -r /proc/reserve_info ] || return 0	# plans run with set -e
	awk -v k="$1" '$1 == k { print $2 }' /proc/reserve_info
}

# nst_reserve_mark: remember how many pages have gone out to swap and
# what tasks running with PF_MEMALLOC have taken from the emergency
# reserve (charged.pf_memalloc_kb), for nst_check_reserve_share.  A
# kernel without the counter ends the plan here.
nst_reserve_mark() {
	nst_mark_out=$(nst_vmstat pswpout)
	nst_mark_pf=$(nst_reserve charged.pf_memalloc_kb)
	nst_check "the kernel reports charged.pf_memalloc_kb" [ -n "$nst_mark_pf" ] || exit 1
}

# nst_check_reserve_share PCT WHERE: since nst_reserve_mark, more than
# 40000 kB went out to swap (through WHERE, for the message), and
# PF_MEMALLOC took less than PCT % of those bytes from the reserve: swap-
# out hands its pages to the transport instead of copying them into
# memory that, at that point, only the reserve has.
nst_check_reserve_share() {
	local out pf
	out=$((($(nst_vmstat pswpout) - nst_mark_out) * 4))
	pf=$(($(nst_reserve charged.pf_memalloc_kb) - nst_mark_pf))
	nst_check "pages went out through $2 ($out kB)" [ "$out" -gt 40000 ]
	nst_check "PF_MEMALLOC took less than $1 % of that from the reserve ($pf kB)" \
		[ $((100 * pf)) -lt $(($1 * out)) ]
}

# nst_reserve_no_net: no memalloc socket holds a share: net.users 0 and
# the reserve is min_free_kbytes alone
nst_reserve_no_net() {
	[ "$(nst_reserve net.users)" = 0 ] &&
		[ "$(nst_reserve total_kb)" = "$(cat /proc/sys/vm/min_free_kbytes)" ]
}

# nst_check_since_restart OUT IN PAGES: after a server restart, more
# than PAGES pages went out to swap since pswpout was OUT, and came in
# since pswpin was IN.
nst_check_since_restart() {
	nst_check "it swapped out after the restart ($(($(nst_vmstat pswpout) - $1)) pages)" \
		[ "$(nst_vmstat pswpout)" -gt $(($1 + $3)) ]
	nst_check "and in ($(($(nst_vmstat pswpin) - $2)) pages)" \
		[ "$(nst_vmstat pswpin)" -gt $(($2 + $3)) ]
}

# nst_check_reserve_as_before USERS TOTAL: the reserve (patched kernels;
# on others USERS is empty and nothing is checked) counts USERS memalloc
# sockets and is TOTAL kB, as before a server restart: the new socket
# took the old one's share.
nst_check_reserve_as_before() {
	[ -n "$1" ] || return 0
	nst_reserve_report
	nst_check "the reserve counts the memalloc sockets as before (net.users $1 -> $(nst_reserve net.users))" \
		[ "$(nst_reserve net.users)" = "$1" ]
	nst_check "the reserve is the size it was ($2 -> $(nst_reserve total_kb) kB)" \
		[ "$(nst_reserve total_kb)" = "$2" ]
}

# nst_reserve_report: /proc/reserve_info on the console, one line
nst_reserve_report() {
	if [ -r /proc/reserve_info ]; then
		nst_log RESERVE $(awk '{ printf "%s=%s ", $1, $2 }' /proc/reserve_info)
	fi
}

# nst_wmark_min_kb: the min watermarks of the zones that have memory,
# added up, in kB (x86 pages; an empty zone still shows a small minimum)
nst_wmark_min_kb() {
	awk '$1 == "min" { min = $2 }
	     $1 == "managed" && $2 > 0 { s += min }
	     END { print s * 4 }' /proc/zoneinfo
}

# nst_mountstats DIR KEY: the fields after KEY ("xprt:", "WRITE:", ...;
# any case) on the first line that starts with it in the section of
# /proc/self/mountstats for the mount on DIR; nothing if there is none.
nst_mountstats() {
	awk -v d="$1" -v key="$2" '
		$1 == "device" { here = ($5 == d) }
		here && toupper($1) == toupper(key) { $1 = ""; print substr($0, 2); exit }' /proc/self/mountstats
}

# nst_nfs_op DIR OP: the counters of NFS operation OP (read, write, ...)
# on the mount on DIR ("OP: ops trans timeouts sent recv queue rtt
# exec"): "ops sent recv rtt_ms exec_ms", nothing if there is no such line.
nst_nfs_op() {
	set -- $(nst_mountstats "$1" "$2:")
	[ $# -lt 8 ] || echo "$1 $4 $5 $7 $8"
}

# nst_nfs_connects DIR: how many times the transport of the NFS mount on
# DIR has connected to the server ("xprt: tcp port binds connects ...")
nst_nfs_connects() {
	set -- $(nst_mountstats "$1" xprt:)
	echo "${4:-}"
}

# nst_stats LABEL [DIR]: counters for benchmarks, one line: swap pages in
# and out, major faults, direct-reclaim stalls, CPU time in USER_HZ ticks
# (busy = user+nice+system+irq+softirq), and, for an NFS mount on DIR,
# the READ and WRITE RPCs with their bytes and total RTT/execute ms.
nst_stats() {
	label=$1 dir=${2:-}
	nfs=
	if [ -n "$dir" ]; then
		for op in read write; do
			set -- $(nst_nfs_op "$dir" $op)
			[ $# = 5 ] || continue
			nfs="$nfs nfs_${op}_ops=$1 nfs_${op}_sent=$2 nfs_${op}_recv=$3 nfs_${op}_rtt_ms=$4 nfs_${op}_exec_ms=$5"
		done
	fi
	nst_log STATS label=$label \
		pswpin=$(nst_vmstat pswpin) pswpout=$(nst_vmstat pswpout) \
		pgmajfault=$(nst_vmstat pgmajfault) \
		allocstall=$(awk '$1 ~ /^allocstall/ { s += $2 } END { print s + 0 }' /proc/vmstat) \
		$(awk '$1 == "cpu" { print "cpu_busy=" $2 + $3 + $4 + $7 + $8, "cpu_idle=" $5, "cpu_iowait=" $6 }' /proc/stat) \
		$nfs
}
