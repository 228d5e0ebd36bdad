# Servers for one test run, on the host's loopback only (sourced).
# nfs_server_start: rpcbind (unless one runs) + nfs-ganesha with the VFS
#   FSAL exporting $RUN/export (read-write) and $RUN/export-ro (read-only),
#   NFSv3 and v4 over TCP, with state, log and pid files in $RUN/ganesha.
#   It listens on 127.0.0.1, or on NST_SERVER_BIND when set (::1 for a
#   guest that mounts over IPv6: QEMU's user network takes its fec0::2 to
#   the host's ::1, and nfs-ganesha listens on one address).
# nfs_server_restart DOWN: kill it and start it again DOWN seconds later.
# nbd_server_start FILE [PORT]: Debian's nbd-server exporting FILE as
#   "swap", on NST_NBD_PORT unless PORT is given.  It serves one
#   connection (-d): a plan that connects again needs a second server.
# nbd_server_restart DOWN: kill the one on NST_NBD_PORT and start it again.
# servers_stop: ends what this run started, by pid, and waits until the
#   processes are gone and the ports are free.
# Ports are fixed (the guest reaches them at 10.0.2.2): NFS 2049,
# MOUNT $NST_MNT_PORT, NBD $NST_NBD_PORT.

NST_MNT_PORT=20048
NST_NBD_PORT=10809
started_pids=

# port_busy PORT: something listens on TCP PORT (v4 or v6).  Read from
# /proc, not by connecting: nbd-server -d serves exactly one connection.
port_busy() {
	local hex
	hex=$(printf ':%04X ' "$1")
	awk -v p="$hex" '$4 == "0A" && index($2 " ", p) { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

wait_port() {	# wait_port PORT up|down SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		if port_busy "$1"; then [ "$2" = up ] && return 0
		else [ "$2" = down ] && return 0
		fi
		sleep 0.1
	done
	return 1
}

remember_pid() { started_pids="$1 $started_pids"; }

ganesha_export() {	# ganesha_export ID PATH RW|RO: one EXPORT block
	cat <<EXPORT
EXPORT {
	Export_Id = $1;
	Path = "$2";
	Pseudo = "$2";
	Access_Type = $3;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
EXPORT
}

nfs_server_start() {
	local g=$RUN/ganesha
	mkdir -p "$RUN/export" "$RUN/export-ro" "$g/recovery"
	chmod 755 "$RUN/export" "$RUN/export-ro"
	for p in 2049 $NST_MNT_PORT; do
		wait_port $p down 20 || die "port $p on 127.0.0.1 is in use by another program: stop it (ss -ltnp 'sport = :$p')"
	done
	if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
		# plain rpcbind: "rpcbind -h 127.0.0.1" crashed here
		mkdir -p /run/rpcbind
		rpcbind -f -w >"$RUN/rpcbind.log" 2>&1 &
		remember_pid $!
		for i in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
		rpcinfo -p 127.0.0.1 >/dev/null 2>&1 || die "rpcbind did not start (log: $RUN/rpcbind.log)"
	fi
	cat >"$g/ganesha.conf" <<CONF
NFS_CORE_PARAM {
	Bind_addr = ${NST_SERVER_BIND:-127.0.0.1};
	NFS_Port = 2049;
	MNT_Port = $NST_MNT_PORT;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Protocols = 3, 4;
}
NFSV4 {
	Graceless = true;
	RecoveryBackend = fs;
	RecoveryRoot = "$g/recovery";
	Minor_Versions = 0, 1, 2;
	Only_Numeric_Owners = true;
	Delegations = false;
}
NFS_KRB5 { Active_krb5 = false; }
$(ganesha_export 1 "$RUN/export" RW)
$(ganesha_export 2 "$RUN/export-ro" RO)
CONF
	ganesha_launch
	NST_EXPORT=$RUN/export
	NST_EXPORT_RO=$RUN/export-ro
}

ganesha_launch() {	# nfs-ganesha on $RUN/ganesha/ganesha.conf
	local g=$RUN/ganesha
	ganesha.nfsd -F -f "$g/ganesha.conf" -L "$g/ganesha.log" -p "$g/ganesha.pid" \
		-N NIV_EVENT >>"$g/stdout.log" 2>&1 &
	NST_GANESHA_PID=$!
	remember_pid $NST_GANESHA_PID
	if ! wait_port 2049 up 30 || ! kill -0 $NST_GANESHA_PID 2>/dev/null; then
		tail -20 "$g/ganesha.log" >&2
		die "nfs-ganesha did not start (log: $g/ganesha.log)"
	fi
}

# nfs_server_restart DOWN: kill nfs-ganesha as a crash would (SIGKILL:
# connections reset, nothing written on the way out), keep it down DOWN
# seconds, and start it again on the same exports and recovery directory.
# Call it from the shell that started the server.
nfs_server_restart() {
	kill -KILL "$NST_GANESHA_PID" 2>/dev/null ||
		die "nfs-ganesha (pid $NST_GANESHA_PID) is not running: nothing to restart"
	wait "$NST_GANESHA_PID" 2>/dev/null || true
	wait_port 2049 down 20 || die "port 2049 is still in use after nfs-ganesha was killed"
	echo "$CASE: nfs-ganesha killed; down for $1 s"
	sleep "$1"
	ganesha_launch
	echo "$CASE: nfs-ganesha started again (pid $NST_GANESHA_PID)"
}

nbd_server_start() {
	local port=${2:-$NST_NBD_PORT} n=$RUN/nbd${2:+-$2}
	mkdir -p "$n"
	wait_port "$port" down 20 || die "port $port on 127.0.0.1 is in use by another program"
	cat >"$n/config" <<CONF
[generic]
	listenaddr = 127.0.0.1
	port = $port
	allowlist = false
[swap]
	exportname = $1
CONF
	nbd-server -C "$n/config" -d >>"$n/nbd-server.log" 2>&1 &
	remember_pid $!
	[ -n "${2:-}" ] || NST_NBD_PID=$! NST_NBD_FILE=$1
	wait_port "$port" up 20 || die "nbd-server did not start (log: $n/nbd-server.log)"
}

# nbd_server_restart DOWN: kill the nbd-server on NST_NBD_PORT as a
# crash would, keep it down DOWN seconds and start it again on the same
# file.  Call it from the shell that started the server.
nbd_server_restart() {
	kill -KILL "${NST_NBD_PID:-}" 2>/dev/null ||
		die "nbd-server (pid ${NST_NBD_PID:-none}) is not running: nothing to restart"
	wait "$NST_NBD_PID" 2>/dev/null || true
	wait_port "$NST_NBD_PORT" down 20 || die "port $NST_NBD_PORT is still in use after nbd-server was killed"
	echo "$CASE: nbd-server killed; down for $1 s"
	sleep "$1"
	nbd_server_start "$NST_NBD_FILE"
	echo "$CASE: nbd-server started again (pid $NST_NBD_PID)"
}

servers_stop() {
	local pid i
	[ -n "$started_pids" ] || return 0	# nothing of ours to stop
	for pid in $started_pids; do
		kill -TERM "$pid" 2>/dev/null || continue
		for ((i = 0; i < 200; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	started_pids=
	wait_port 2049 down 20 || echo "warning: port 2049 still in use after stopping the servers" >&2
}
