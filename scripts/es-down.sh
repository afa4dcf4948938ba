#!/usr/bin/env bash
# es-down.sh: stop the Elasticsearch started by scripts/es-up.sh and remove its
# data. Reads the state file es-up.sh wrote; does nothing (successfully) when
# there is none.
#
# Local mode: SIGTERM to the server JVM (and to any other process still using
# the runtime directory), wait up to CULPRIT_ES_STOP_TIMEOUT seconds (default
# 30), then SIGKILL; then remove the runtime directory (data, logs, config) and
# the state file. Docker mode: `docker rm -f` the container.
#
# Environment (all optional):
#   CULPRIT_ES_STATE         state file. Default: <repo>/.es/state
#   CULPRIT_ES_STOP_TIMEOUT  seconds to wait after SIGTERM. Default: 30
#   CULPRIT_ES_KEEP          1: keep the runtime directory (logs) for debugging
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
STATE=${CULPRIT_ES_STATE:-$REPO/.es/state}
case $STATE in /*) ;; *) STATE="$PWD/$STATE" ;; esac
STOP_TIMEOUT=${CULPRIT_ES_STOP_TIMEOUT:-30}
KEEP=${CULPRIT_ES_KEEP:-0}

log() { printf 'es-down: %s\n' "$*" >&2; }
die() {
	printf 'es-down: ERROR: %s\n' "$1" >&2
	shift
	local hint
	for hint in "$@"; do printf 'es-down:   %s\n' "$hint" >&2; done
	exit 1
}

case $STOP_TIMEOUT in '' | *[!0-9]*) die "CULPRIT_ES_STOP_TIMEOUT must be a number of seconds, got '$STOP_TIMEOUT'" ;; esac

if [[ ! -f $STATE ]]; then
	log "nothing to stop (no state file $STATE)"
	exit 0
fi

if command -v flock >/dev/null 2>&1 && [[ -z ${_CULPRIT_ES_LOCK_HELD:-} ]]; then
	exec 9>"$STATE.lock"
	flock -w 600 9 || die "timed out waiting for another es-up/es-down holding $STATE.lock"
fi
[[ -f $STATE ]] || {
	log "nothing to stop (state file $STATE went away)"
	exit 0
}

mode='' url='' pid='' run_dir='' container=''
while IFS='=' read -r k v; do
	case $k in
	mode) mode=$v ;;
	url) url=$v ;;
	pid) pid=$v ;;
	run_dir) run_dir=$v ;;
	container) container=$v ;;
	esac
done <"$STATE"

if [[ $mode == docker ]]; then
	if [[ -n $container ]]; then
		log "removing container $container ($url)"
		if ! docker rm -f "$container" >/dev/null 2>&1 && docker inspect "$container" >/dev/null 2>&1; then
			die "could not remove container $container" "try: docker rm -f $container"
		fi
	fi
	rm -f "$STATE"
	log "stopped"
	exit 0
fi

# is_ours PID: a process of this cluster: the server JVM, the launcher, or the
# runuser/env wrapping it all name <run_dir>/home on their command line.
is_ours() {
	local cmd
	cmd=$(cmdline_of "$1")
	[[ -n $run_dir && $cmd == *"$run_dir/home"* ]]
}

# running PID: alive and not a zombie (a zombie has released everything).
running() {
	kill -0 "$1" 2>/dev/null || return 1
	[[ -r /proc/$1/stat ]] || return 0
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# pids_in_run_dir: every live process of this cluster, including a launcher
# left behind by an interrupted es-up.
pids_in_run_dir() {
	local f p
	[[ -n $run_dir && -d /proc ]] || return 0
	for f in /proc/[0-9]*; do
		p=${f#/proc/}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		if is_ours "$p" && running "$p"; then echo "$p"; fi
	done
}

targets=()
if [[ -n $pid ]] && running "$pid"; then
	if [[ ! -d /proc/$pid ]] || is_ours "$pid"; then
		targets+=("$pid")
	elif [[ -z $(cmdline_of "$pid") ]]; then
		# Already exiting (killed from elsewhere): let it finish closing its files.
		for _ in $(seq 1 20); do
			running "$pid" || break
			sleep 0.5
		done
	else
		log "pid $pid from $STATE is alive but is not this Elasticsearch (pid reused?); not touching it"
	fi
fi
while read -r p; do
	[[ -n $p && " ${targets[*]} " != *" $p "* ]] && targets+=("$p")
done < <(pids_in_run_dir)

if ((${#targets[@]} > 0)); then
	log "stopping Elasticsearch at ${url:-?} (pid ${targets[*]}): SIGTERM"
	kill -TERM "${targets[@]}" 2>/dev/null || true
	deadline=$((SECONDS + STOP_TIMEOUT))
	while ((SECONDS < deadline)); do
		alive=()
		for p in "${targets[@]}"; do running "$p" && alive+=("$p"); done
		((${#alive[@]} == 0)) && break
		sleep 0.5
	done
	alive=()
	for p in "${targets[@]}"; do running "$p" && alive+=("$p"); done
	if ((${#alive[@]} > 0)); then
		log "still running after ${STOP_TIMEOUT}s; SIGKILL ${alive[*]}"
		kill -KILL "${alive[@]}" 2>/dev/null || true
		for _ in $(seq 1 20); do
			alive2=()
			for p in "${alive[@]}"; do running "$p" && alive2+=("$p"); done
			((${#alive2[@]} == 0)) && break
			sleep 0.5
		done
		for p in "${alive[@]}"; do
			running "$p" && die "process $p survived SIGKILL" "inspect it: ps -o pid,stat,cmd -p $p"
		done
	fi
else
	log "Elasticsearch at ${url:-?} is not running"
fi

if [[ -n $run_dir && -d $run_dir ]]; then
	if [[ $KEEP == 1 ]]; then
		log "keeping $run_dir (CULPRIT_ES_KEEP=1)"
	else
		case $run_dir in
		*/culprit-es-*) rm -rf -- "$run_dir" || die "could not remove $run_dir" "remove it by hand: rm -rf '$run_dir'" ;;
		*) log "not removing unexpected run_dir '$run_dir' from $STATE" ;;
		esac
	fi
fi
rm -f "$STATE"
log "stopped"
