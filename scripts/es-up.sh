#!/usr/bin/env bash
# es-up.sh: start a throwaway single-node Elasticsearch 8.x for tests and print
# its URL as the last (and only) line of stdout. Progress goes to stderr.
#
# Two ways to get a server:
#   docker  If a Docker engine answers `docker info`, run the official image
#           docker.elastic.co/elasticsearch/elasticsearch:<version> on 127.0.0.1.
#   local   Otherwise download the official test distribution from Maven Central
#           (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<v>:zip,
#           checksum-verified), unpack it into a cache and run it on a local JDK
#           as an unprivileged user (Elasticsearch refuses to run as root).
#
# Idempotent: if the state file names a running, healthy cluster started in
# the same security mode (same password, CULPRIT_ES_USERS and roles file), its
# URL is printed and nothing else happens.
# Stop it with scripts/es-down.sh.
#
# Environment (all optional):
#   CULPRIT_ES_VERSION    exact version (8.19.21) or a prefix (8, 8.19); the
#                         newest matching release on Maven Central is used.
#                         Default: 8
#   CULPRIT_ES_PORT       HTTP port. Default: 9200, or the next free port in
#                         9200-9299 (then any free port) if 9200 is busy. An
#                         explicitly set port that is busy is an error.
#   CULPRIT_ES_SECURITY   1: security on, HTTP basic auth, no TLS. Default: 0
#   CULPRIT_ES_PASSWORD   password of the built-in `elastic` user in security
#                         mode. Default: culprit-test-password
#   CULPRIT_ES_USERS      security mode: extra file-realm users, space-separated
#                         name:password[:role,role], e.g.
#                         "reader:reader-pw:viewer writer:writer-pw:logs_writer".
#   CULPRIT_ES_ROLES_FILE security mode: a roles.yml defining custom roles for
#                         those users (file-based roles).
#   CULPRIT_ES_MODE       auto | docker | local. Default: auto
#   CULPRIT_ES_HEAP       JVM heap (-Xms and -Xmx). Default: 512m
#   CULPRIT_ES_JAVA_OPTS  extra options for the server JVM, e.g.
#                         -XX:TieredStopAtLevel=1 (starts ~2 s faster, slower JIT)
#   CULPRIT_ES_SETTINGS   extra settings, space-separated key=value pairs,
#                         passed as -E key=value (docker: -e key=value).
#   CULPRIT_ES_TIMEOUT    seconds to wait for the cluster to turn yellow. Default:
#                         240 (it takes ~10 s on an idle 2-CPU machine, but over
#                         a minute when the CPUs are busy, e.g. with go test)
#   CULPRIT_ES_STATE      state file. Default: <repo>/.es/state. Use another one
#                         to run a second cluster next to the first.
#   CULPRIT_ES_CACHE      download/unpack cache.
#                         Default: ${XDG_CACHE_HOME:-$HOME/.cache}/culprit/es
#   CULPRIT_ES_RUN_ROOT   parent of the per-cluster runtime directory. Default:
#                         <repo>/.es if the Elasticsearch user can reach it,
#                         else ${TMPDIR:-/tmp}
#   CULPRIT_ES_USER       system user Elasticsearch runs as when this script
#                         runs as root (created if missing). Default: culprit-es
#   CULPRIT_ES_JAVA_HOME  JDK to use (8.x needs Java 17+, 9.x Java 21+). Default:
#                         the lowest suitable JDK among $ES_JAVA_HOME, $JAVA_HOME,
#                         /usr/lib/jvm/* and the java on PATH; as root on Debian,
#                         openjdk-17-jre-headless is installed if none is found.
#   CULPRIT_ES_IMAGE      docker image repository.
#                         Default: docker.elastic.co/elasticsearch/elasticsearch
#
# Security mode with the integ-test-zip (local mode): the built-in `elastic`
# user (password from the keystore's bootstrap.password) and file-realm users
# (CULPRIT_ES_USERS) work, and wrong or missing credentials get 401. API keys,
# native users and password changes do NOT work: they need the .security system
# index, whose mapping uses the `pattern_capture` token filter of the
# analysis-common module, which this distribution does not ship; the API answers
# 400 "Unknown filter type [pattern_capture] for [email]". The docker image has
# all modules, so API keys should work there (not tested: no Docker engine here).
#
# Where things go (local mode): the zip and its unpacked copy stay in the cache.
# Elasticsearch refuses to run as root, so as root it runs as CULPRIT_ES_USER,
# which usually cannot read the cache under $HOME (/root is mode 700). Each
# cluster therefore gets a runtime directory culprit-es-<port>.XXXXXX holding a
# hard-linked copy of the distribution (home/), its own config/ (keystore,
# users), data/, logs/, tmp/ and run/es.pid. It is created under <repo>/.es
# (git-ignored) when the user can traverse to it, else under ${TMPDIR:-/tmp};
# the state file records where. es-down.sh removes it.
#
# State file (key=value lines, no quoting; see es-down.sh):
#   mode, url, port, version, security, username, password, pid, run_dir,
#   data_dir, log_dir, log_file, es_user, container, users, roles_file,
#   started_at
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
ES_DIR="$REPO/.es"
STATE=${CULPRIT_ES_STATE:-$ES_DIR/state}
case $STATE in /*) ;; *) STATE="$PWD/$STATE" ;; esac

VERSION_SPEC=${CULPRIT_ES_VERSION:-8}
SECURITY=${CULPRIT_ES_SECURITY:-0}
PASSWORD=${CULPRIT_ES_PASSWORD:-culprit-test-password}
MODE=${CULPRIT_ES_MODE:-auto}
HEAP=${CULPRIT_ES_HEAP:-512m}
EXTRA_SETTINGS=${CULPRIT_ES_SETTINGS:-}
TIMEOUT=${CULPRIT_ES_TIMEOUT:-240}
JAVA_OPTS="-Xms$HEAP -Xmx$HEAP${CULPRIT_ES_JAVA_OPTS:+ $CULPRIT_ES_JAVA_OPTS}"
CACHE=${CULPRIT_ES_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/culprit/es}
ES_USER_NAME=${CULPRIT_ES_USER:-culprit-es}
IMAGE=${CULPRIT_ES_IMAGE:-docker.elastic.co/elasticsearch/elasticsearch}
MAVEN_BASE=https://repo1.maven.org/maven2/org/elasticsearch/distribution/integ-test-zip/elasticsearch
# Used only in docker mode when Maven Central cannot be asked for the newest 8.x.
DOCKER_FALLBACK_VERSION=8.19.21
CLUSTER_NAME=culprit-test

log() { printf 'es-up: %s\n' "$*" >&2; }
die() {
	printf 'es-up: ERROR: %s\n' "$1" >&2
	shift
	local hint
	for hint in "$@"; do printf 'es-up:   %s\n' "$hint" >&2; done
	exit 1
}

case $SECURITY in 0 | 1) ;; *) die "CULPRIT_ES_SECURITY must be 0 or 1, got '$SECURITY'" ;; esac
case $MODE in auto | docker | local) ;; *) die "CULPRIT_ES_MODE must be auto, docker or local, got '$MODE'" ;; esac
[[ $HEAP =~ ^[0-9]+[kmgKMG]?$ ]] || die "CULPRIT_ES_HEAP must look like 512m or 1g, got '$HEAP'"
case $TIMEOUT in '' | *[!0-9]*) die "CULPRIT_ES_TIMEOUT must be a number of seconds, got '$TIMEOUT'" ;; esac
if [[ $SECURITY == 1 && ${#PASSWORD} -lt 6 ]]; then
	die "CULPRIT_ES_PASSWORD must be at least 6 characters (Elasticsearch rejects shorter ones)"
fi
case $PASSWORD in *[[:space:]]* | *:*) die "CULPRIT_ES_PASSWORD must not contain whitespace or ':'" ;; esac
FILE_USERS=${CULPRIT_ES_USERS:-}
ROLES_FILE=${CULPRIT_ES_ROLES_FILE:-}
for spec in $FILE_USERS; do
	[[ $spec =~ ^[A-Za-z0-9_.@-]+:[^:]{6,}(:[A-Za-z0-9_.,-]*)?$ ]] ||
		die "CULPRIT_ES_USERS entry '$spec' is not name:password[:role,role] (password at least 6 characters)"
done
if [[ -n $FILE_USERS || -n $ROLES_FILE ]] && [[ $SECURITY != 1 ]]; then
	die "CULPRIT_ES_USERS / CULPRIT_ES_ROLES_FILE need CULPRIT_ES_SECURITY=1"
fi
if [[ -n $ROLES_FILE && ! -r $ROLES_FILE ]]; then
	die "CULPRIT_ES_ROLES_FILE=$ROLES_FILE is not a readable file"
fi

# ---------------------------------------------------------------- helpers

APT_UPDATED=0
# ensure_cmd CMD PACKAGE: make CMD available, installing PACKAGE with apt-get
# when running as root on a Debian-like machine (fresh CI machines).
ensure_cmd() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "'$1' is missing; installing Debian package $2"
		apt_install "$2" || die "could not install $2 with apt-get (needed for '$1')" \
			"install it by hand: apt-get update && apt-get install -y $2"
		command -v "$1" >/dev/null 2>&1 && return 0
	fi
	die "'$1' is required but not installed" "install the package that provides it (Debian: $2)"
}

apt_install() {
	if [[ $APT_UPDATED == 0 ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# read_state FILE: set st_<key> for every key=value line in FILE.
read_state() {
	local k v
	st_mode='' st_url='' st_pid='' st_security='' st_username='' st_password='' st_users='' st_roles_file=''
	while IFS='=' read -r k v; do
		case $k in
		mode | url | pid | security | username | password | users | roles_file) printf -v "st_$k" '%s' "$v" ;;
		esac
	done <"$1"
}

# http_status URL [USER PASSWORD]: print the HTTP status code (000 if no answer).
http_status() {
	local auth=()
	[[ -n ${2:-} ]] && auth=(-u "$2:$3")
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${auth[@]}" "$1" 2>/dev/null || true
}

cluster_healthy() { # URL USER PASSWORD
	[[ $(http_status "$1/_cluster/health?wait_for_status=yellow&timeout=1s" "${2:-}" "${3:-}") == 200 ]]
}

port_free() { # PORT: succeed if nothing listens on 127.0.0.1:PORT
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
# Like Elasticsearch (netty): connections of a previous server still in
# TIME_WAIT do not make the port busy, only a listener does.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
		return
	fi
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]
		return
	fi
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
	local p
	if [[ -n ${CULPRIT_ES_PORT:-} ]]; then
		case $CULPRIT_ES_PORT in '' | *[!0-9]*) die "CULPRIT_ES_PORT must be a port number, got '$CULPRIT_ES_PORT'" ;; esac
		port_free "$CULPRIT_ES_PORT" || die "port $CULPRIT_ES_PORT (CULPRIT_ES_PORT) is already in use on 127.0.0.1" \
			"unset CULPRIT_ES_PORT to let the script pick a free port, or stop what listens there (ss -tlnp)"
		echo "$CULPRIT_ES_PORT"
		return
	fi
	for ((p = 9200; p < 9300; p++)); do
		if port_free "$p"; then
			echo "$p"
			return
		fi
	done
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
		return
	fi
	die "no free port in 9200-9299 and no python3 to ask the OS for one" "set CULPRIT_ES_PORT to a free port"
}

# wait_healthy URL USER PASSWORD WATCH_PID: poll until yellow; fail early if
# WATCH_PID (the launcher) exits non-zero.
wait_healthy() {
	local url=$1 user=$2 pw=$3 watch=${4:-} deadline=$((SECONDS + TIMEOUT)) rc
	while ((SECONDS < deadline)); do
		if cluster_healthy "$url" "$user" "$pw"; then return 0; fi
		if [[ -n $watch ]] && ! kill -0 "$watch" 2>/dev/null; then
			rc=0
			wait "$watch" || rc=$?
			watch=''
			if [[ $rc != 0 ]]; then
				log "the Elasticsearch launcher exited with status $rc before the cluster became healthy"
				return 1
			fi
		fi
		sleep 0.5
	done
	log "the cluster did not reach status yellow within ${TIMEOUT}s (CULPRIT_ES_TIMEOUT)"
	return 1
}

url_for() { echo "http://127.0.0.1:$1"; }

# ----------------------------------------------------------- serialisation

mkdir -p "$ES_DIR" "$(dirname "$STATE")"
if command -v flock >/dev/null 2>&1 && [[ -z ${_CULPRIT_ES_LOCK_HELD:-} ]]; then
	exec 9>"$STATE.lock"
	flock -w 600 9 || die "timed out waiting for another es-up/es-down holding $STATE.lock"
	export _CULPRIT_ES_LOCK_HELD=1
fi

ensure_cmd curl curl

# ------------------------------------------------------------ idempotence

if [[ -f $STATE ]]; then
	read_state "$STATE"
	alive=0
	if [[ $st_mode == docker ]]; then
		cluster_healthy "$st_url" "$st_username" "$st_password" && alive=1
	elif [[ -n $st_pid ]] && kill -0 "$st_pid" 2>/dev/null && cluster_healthy "$st_url" "$st_username" "$st_password"; then
		alive=1
	fi
	if [[ $alive == 1 ]]; then
		if [[ ${st_security:-0} != "$SECURITY" ]]; then
			die "a cluster is already running at $st_url with CULPRIT_ES_SECURITY=${st_security:-0}, but CULPRIT_ES_SECURITY=$SECURITY was asked for" \
				"stop it first (scripts/es-down.sh), or start a second one with a different CULPRIT_ES_STATE"
		fi
		if [[ $SECURITY == 1 && $st_password != "$PASSWORD" ]]; then
			die "a secured cluster is already running at $st_url with a different password" \
				"stop it first (scripts/es-down.sh), or use the password recorded in $STATE"
		fi
		if [[ $st_users != "$FILE_USERS" || $st_roles_file != "$ROLES_FILE" ]]; then
			die "a cluster is already running at $st_url with other CULPRIT_ES_USERS/CULPRIT_ES_ROLES_FILE ('$st_users', '$st_roles_file')" \
				"stop it first (scripts/es-down.sh), or start a second one with a different CULPRIT_ES_STATE"
		fi
		log "already running: $st_url (state: $STATE)"
		echo "$st_url"
		exit 0
	fi
	log "state file $STATE names a cluster that is not running or not healthy; cleaning it up"
	bash "$SCRIPT_DIR/es-down.sh" >&2 || die "could not clean up the stale cluster from $STATE" \
		"run scripts/es-down.sh by hand and read its messages"
fi

USERNAME='' STATE_PASSWORD=''
if [[ $SECURITY == 1 ]]; then
	USERNAME=elastic
	STATE_PASSWORD=$PASSWORD
fi

write_state() { # key=value ...
	local tmp="$STATE.tmp.$$"
	printf '%s\n' "$@" "users=$FILE_USERS" "roles_file=$ROLES_FILE" "started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp"
	mv -f "$tmp" "$STATE"
}

# ------------------------------------------------------------- versions

# resolve_version PREFIX: newest release on Maven Central equal to PREFIX or
# starting with "PREFIX."; empty if Maven Central cannot be reached.
maven_versions() {
	curl -fsSL --max-time 30 --retry 3 "$MAVEN_BASE/maven-metadata.xml" 2>/dev/null |
		sed -n 's:.*<version>\([^<]*\)</version>.*:\1:p'
}

pick_newest() { # PREFIX < versions
	grep -E "^$(printf '%s' "$1" | sed 's/\./\\./g')(\.|$)" | grep -Ev -- '-(SNAPSHOT|alpha|beta|rc)' | sort -V | tail -n 1
}

docker_reachable() {
	command -v docker >/dev/null 2>&1 || return 1
	if command -v timeout >/dev/null 2>&1; then
		timeout 20 docker info >/dev/null 2>&1
	else
		docker info >/dev/null 2>&1
	fi
}

if [[ $MODE == auto ]]; then
	if docker_reachable; then MODE=docker; else MODE=local; fi
elif [[ $MODE == docker ]] && ! docker_reachable; then
	die "CULPRIT_ES_MODE=docker but 'docker info' fails: no Docker engine is reachable" \
		"start the Docker daemon, or use CULPRIT_ES_MODE=local (downloads the test distribution from Maven Central)"
fi
log "mode: $MODE"

# ============================================================ docker mode

if [[ $MODE == docker ]]; then
	VERSION=$(maven_versions | pick_newest "$VERSION_SPEC" || true)
	if [[ -z $VERSION ]]; then
		if [[ $VERSION_SPEC =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then VERSION=$VERSION_SPEC; else VERSION=$DOCKER_FALLBACK_VERSION; fi
		log "could not list versions on Maven Central; using $VERSION"
	fi
	PORT=$(pick_port)
	URL=$(url_for "$PORT")
	NAME="culprit-es-$PORT"
	args=(-e discovery.type=single-node
		-e "ES_JAVA_OPTS=$JAVA_OPTS"
		-e cluster.name="$CLUSTER_NAME"
		-e cluster.routing.allocation.disk.threshold_enabled=false
		-e action.destructive_requires_name=false
		-e xpack.ml.enabled=false)
	if [[ $SECURITY == 1 ]]; then
		args+=(-e xpack.security.enabled=true -e "ELASTIC_PASSWORD=$PASSWORD"
			-e xpack.security.http.ssl.enabled=false -e xpack.security.transport.ssl.enabled=false)
	else
		args+=(-e xpack.security.enabled=false)
	fi
	for kv in $EXTRA_SETTINGS; do args+=(-e "$kv"); done
	docker rm -f "$NAME" >/dev/null 2>&1 || true
	log "starting container $NAME from $IMAGE:$VERSION on $URL"
	# fd 9 (the lock) must not leak into anything long-lived.
	docker run -d --name "$NAME" -p "127.0.0.1:$PORT:9200" "${args[@]}" "$IMAGE:$VERSION" >/dev/null 9>&- ||
		die "docker run $IMAGE:$VERSION failed" "check that the image can be pulled: docker pull $IMAGE:$VERSION"
	if ! wait_healthy "$URL" "$USERNAME" "$PASSWORD" ''; then
		log "last 50 lines of the container log:"
		docker logs --tail 50 "$NAME" >&2 2>&1 || true
		docker rm -f "$NAME" >/dev/null 2>&1 || true
		die "Elasticsearch $VERSION in docker did not become healthy at $URL" \
			"see the log above; try CULPRIT_ES_MODE=local, or a larger CULPRIT_ES_TIMEOUT"
	fi
	if [[ -n $ROLES_FILE ]]; then
		docker cp "$ROLES_FILE" "$NAME:/usr/share/elasticsearch/config/roles.yml" >/dev/null ||
			die "docker cp of $ROLES_FILE into $NAME failed"
	fi
	for spec in $FILE_USERS; do
		IFS=: read -r u_name u_pw u_roles <<<"$spec"
		log "adding file-realm user $u_name (roles: ${u_roles:-none})"
		u_args=(useradd "$u_name" -p "$u_pw")
		[[ -n $u_roles ]] && u_args+=(-r "$u_roles")
		docker exec "$NAME" bin/elasticsearch-users "${u_args[@]}" >&2 9>&- || die "elasticsearch-users useradd $u_name failed in $NAME"
		# The file realm rereads its files every 5 s.
		for _ in $(seq 1 30); do
			[[ $(http_status "$URL/_security/_authenticate" "$u_name" "$u_pw") == 200 ]] && break
			sleep 1
		done
	done
	write_state mode=docker "url=$URL" "port=$PORT" "version=$VERSION" "security=$SECURITY" \
		"username=$USERNAME" "password=$STATE_PASSWORD" \
		pid= run_dir= data_dir= log_dir= log_file= es_user= "container=$NAME"
	log "Elasticsearch $VERSION is up at $URL (container $NAME)"
	echo "$URL"
	exit 0
fi

# ============================================================= local mode

# ---- version
VERSION=''
if [[ $VERSION_SPEC =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	VERSION=$VERSION_SPEC
else
	VERSION=$(maven_versions | pick_newest "$VERSION_SPEC" || true)
	if [[ -z $VERSION ]]; then
		# Offline: fall back to the newest version already in the cache.
		VERSION=$(find "$CACHE" -maxdepth 1 -name 'elasticsearch-*' -type d 2>/dev/null |
			sed 's:.*/elasticsearch-::' | pick_newest "$VERSION_SPEC" || true)
		[[ -n $VERSION ]] || die "could not read $MAVEN_BASE/maven-metadata.xml and no cached version matches '$VERSION_SPEC'" \
			"check network access to repo1.maven.org (curl -v $MAVEN_BASE/maven-metadata.xml)" \
			"or set CULPRIT_ES_VERSION to an exact version, e.g. 8.19.21"
		log "Maven Central unreachable; using cached version $VERSION"
	fi
fi
MAJOR=${VERSION%%.*}
case $MAJOR in
8) JAVA_MIN=17 ;;
9 | 1[0-9]) JAVA_MIN=21 ;;
*) die "Elasticsearch $VERSION is not supported by this script (8.x or 9.x only)" "set CULPRIT_ES_VERSION=8" ;;
esac
log "version: $VERSION"

# ---- download and unpack into the cache
DIST="$CACHE/elasticsearch-$VERSION"
mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
	# Several es-up runs (different CULPRIT_ES_STATE) may share the cache.
	exec 8>"$CACHE/.lock"
	flock -w 900 8 || die "timed out waiting for another es-up downloading into $CACHE"
fi
if [[ ! -x $DIST/bin/elasticsearch ]]; then
	ZIP="$CACHE/elasticsearch-$VERSION.zip"
	URL_ZIP="$MAVEN_BASE/$VERSION/elasticsearch-$VERSION.zip"
	verify_zip() {
		local algo tool want have
		for algo in sha512 sha1 md5; do
			tool=${algo}sum
			command -v "$tool" >/dev/null 2>&1 || continue
			want=$(curl -fsSL --max-time 30 --retry 3 "$URL_ZIP.$algo" 2>/dev/null | awk '{print $1; exit}') || continue
			[[ -n $want ]] || continue
			have=$($tool "$1" | awk '{print $1}')
			if [[ $have == "$want" ]]; then
				log "$algo checksum OK"
				return 0
			fi
			log "$algo mismatch for $1: expected $want, got $have"
			return 1
		done
		log "no checksum (.sha512/.sha1/.md5) could be fetched for $URL_ZIP"
		return 1
	}
	if [[ ! -f $ZIP ]] || ! verify_zip "$ZIP"; then
		log "downloading $URL_ZIP"
		tmpzip="$ZIP.part.$$"
		curl -fsSL --retry 3 --max-time 900 -o "$tmpzip" "$URL_ZIP" || {
			rm -f "$tmpzip"
			die "download of $URL_ZIP failed" "check network access to repo1.maven.org, and that version $VERSION exists there"
		}
		verify_zip "$tmpzip" || {
			rm -f "$tmpzip"
			die "checksum verification of $URL_ZIP failed" "retry; if it keeps failing, the download is being altered on the way"
		}
		mv -f "$tmpzip" "$ZIP"
	fi
	log "unpacking into $DIST"
	tmpdir=$(mktemp -d "$CACHE/unpack.XXXXXX")
	if command -v unzip >/dev/null 2>&1; then
		unzip -q "$ZIP" -d "$tmpdir" || die "unzip of $ZIP failed" "delete it and retry: rm -f '$ZIP'"
	elif command -v python3 >/dev/null 2>&1; then
		python3 -m zipfile -e "$ZIP" "$tmpdir" || die "unpacking $ZIP with python3 failed" "delete it and retry: rm -f '$ZIP'"
		chmod +x "$tmpdir"/elasticsearch-"$VERSION"/bin/*
	else
		ensure_cmd unzip unzip
		unzip -q "$ZIP" -d "$tmpdir" || die "unzip of $ZIP failed" "delete it and retry: rm -f '$ZIP'"
	fi
	[[ -x $tmpdir/elasticsearch-$VERSION/bin/elasticsearch ]] || die "$ZIP does not contain elasticsearch-$VERSION/bin/elasticsearch" \
		"delete it and retry: rm -f '$ZIP'"
	chmod -R a+rX "$tmpdir/elasticsearch-$VERSION"
	rm -rf "$DIST"
	mv "$tmpdir/elasticsearch-$VERSION" "$DIST"
	rmdir "$tmpdir"
fi

exec 8>&- # release the cache lock

# ---- Java
java_major() { # JAVA_HOME -> major version, or nothing
	local v=''
	[[ -x $1/bin/java ]] || return 0
	if [[ -f $1/release ]]; then
		v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$1/release")
	fi
	[[ -n $v ]] || v=$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
	v=${v#1.}
	v=${v%%[!0-9]*}
	echo "$v"
}

find_java() {
	local cands=() c m best='' bestm=999 onpath
	if [[ -n ${CULPRIT_ES_JAVA_HOME:-} ]]; then
		m=$(java_major "$CULPRIT_ES_JAVA_HOME")
		[[ -n $m && $m -ge $JAVA_MIN ]] || die "CULPRIT_ES_JAVA_HOME=$CULPRIT_ES_JAVA_HOME is not a Java $JAVA_MIN+ home (found '${m:-no java}')"
		echo "$CULPRIT_ES_JAVA_HOME"
		return
	fi
	[[ -n ${ES_JAVA_HOME:-} ]] && cands+=("$ES_JAVA_HOME")
	[[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME")
	for c in /usr/lib/jvm/*; do [[ -L $c ]] || cands+=("$c"); done
	if onpath=$(command -v java 2>/dev/null); then
		onpath=$(readlink -f "$onpath")
		cands+=("${onpath%/bin/java}")
	fi
	for c in "${cands[@]}"; do
		m=$(java_major "$c")
		[[ -n $m ]] || continue
		# Prefer the oldest supported JDK: 8.x is tested most on 17 and 21.
		if ((m >= JAVA_MIN && m < bestm)); then
			best=$c
			bestm=$m
		fi
	done
	echo "$best"
}

JAVA_HOME_ES=$(find_java)
if [[ -z $JAVA_HOME_ES ]]; then
	if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "no Java $JAVA_MIN+ found; installing openjdk-$JAVA_MIN-jre-headless with apt-get"
		apt_install "openjdk-$JAVA_MIN-jre-headless" || die "apt-get install openjdk-$JAVA_MIN-jre-headless failed" \
			"install a Java $JAVA_MIN+ runtime and point CULPRIT_ES_JAVA_HOME at it"
		JAVA_HOME_ES=$(find_java)
	fi
	[[ -n $JAVA_HOME_ES ]] || die "Elasticsearch $VERSION needs Java $JAVA_MIN or later and none was found" \
		"install one (Debian: apt-get install openjdk-17-jre-headless) or set CULPRIT_ES_JAVA_HOME"
fi
log "java: $JAVA_HOME_ES (Java $(java_major "$JAVA_HOME_ES"))"

# ---- the user Elasticsearch runs as
if [[ $EUID -eq 0 ]]; then
	ES_USER=$ES_USER_NAME
	if ! id -u "$ES_USER" >/dev/null 2>&1; then
		log "creating system user $ES_USER (Elasticsearch refuses to run as root)"
		nologin=$(command -v nologin || echo /usr/sbin/nologin)
		if command -v useradd >/dev/null 2>&1; then
			useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" "$ES_USER" ||
				id -u "$ES_USER" >/dev/null 2>&1 || die "useradd $ES_USER failed" "create the user by hand or set CULPRIT_ES_USER to an existing non-root user"
		elif command -v adduser >/dev/null 2>&1; then
			adduser --system --group --no-create-home "$ES_USER" >&2 ||
				id -u "$ES_USER" >/dev/null 2>&1 || die "adduser $ES_USER failed" "create the user by hand or set CULPRIT_ES_USER to an existing non-root user"
		else
			die "cannot create user $ES_USER: neither useradd nor adduser exists" "create a non-root user and set CULPRIT_ES_USER"
		fi
	fi
	[[ $(id -u "$ES_USER") != 0 ]] || die "CULPRIT_ES_USER=$ES_USER is root; Elasticsearch refuses to run as root"
else
	ES_USER=$(id -un)
fi

# as_es_user CMD...: run CMD as $ES_USER with a clean environment (ES_* vars
# must be set by the caller through `env`).
as_es_user() {
	if [[ $EUID -ne 0 ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u "$ES_USER" -- "$@"
	elif command -v setpriv >/dev/null 2>&1; then
		setpriv --reuid="$ES_USER" --regid="$(id -g "$ES_USER")" --init-groups -- "$@"
	else
		# shellcheck disable=SC2016 # expanded by the inner sh, on purpose
		su -s /bin/sh -c '"$0" "$@"' "$ES_USER" "$@"
	fi
}

# ---- runtime directory: data, logs, config and a hard-linked copy of the
# distribution. It must be reachable by $ES_USER: the cache usually lives under
# $HOME (e.g. /root, mode 700) and the repo may too, so the distribution is
# linked into the runtime dir, and the runtime dir goes to <repo>/.es only if
# $ES_USER can traverse to it, otherwise to ${TMPDIR:-/tmp}.
PORT=$(pick_port)
URL=$(url_for "$PORT")
reachable() { as_es_user test -x "$1" 2>/dev/null; }
RUN_ROOT=${CULPRIT_ES_RUN_ROOT:-}
if [[ -z $RUN_ROOT ]]; then
	if reachable "$ES_DIR"; then
		RUN_ROOT=$ES_DIR
	else
		RUN_ROOT=${TMPDIR:-/tmp}
		reachable "$RUN_ROOT" || RUN_ROOT=/tmp
		log "$ES_USER cannot reach $ES_DIR; using $RUN_ROOT for the runtime directory"
	fi
fi
mkdir -p "$RUN_ROOT"
reachable "$RUN_ROOT" || die "user $ES_USER cannot traverse into $RUN_ROOT" \
	"set CULPRIT_ES_RUN_ROOT to a directory whose every parent is world-executable (e.g. /tmp)"
RUN=$(mktemp -d "$RUN_ROOT/culprit-es-$PORT.XXXXXX")
chmod 755 "$RUN"
if ! cp -al "$DIST" "$RUN/home" 2>/dev/null; then
	rm -rf "${RUN:?}/home"
	cp -a "$DIST" "$RUN/home"
fi
cp -a "$DIST/config" "$RUN/config"
mkdir -p "$RUN/data" "$RUN/logs" "$RUN/tmp" "$RUN/run"
if [[ $EUID -eq 0 ]]; then
	chown -R "$ES_USER:$(id -gn "$ES_USER")" "$RUN/config" "$RUN/data" "$RUN/logs" "$RUN/tmp" "$RUN/run"
fi
chmod 750 "$RUN/config" "$RUN/data" "$RUN/tmp"
PIDFILE="$RUN/run/es.pid"
LOG_FILE="$RUN/logs/$CLUSTER_NAME.log"
STARTUP_LOG="$RUN/startup.log"

es_env=(env -i "PATH=/usr/local/bin:/usr/bin:/bin" "HOME=$RUN/tmp" "LANG=C.UTF-8"
	"ES_HOME=$RUN/home" "ES_PATH_CONF=$RUN/config" "ES_JAVA_HOME=$JAVA_HOME_ES"
	"ES_TMPDIR=$RUN/tmp" "ES_JAVA_OPTS=$JAVA_OPTS")

settings=(
	-E discovery.type=single-node
	-E "cluster.name=$CLUSTER_NAME"
	-E "node.name=culprit-es-$PORT"
	-E network.host=127.0.0.1
	-E http.host=127.0.0.1
	-E "http.port=$PORT"
	-E transport.host=127.0.0.1
	-E "path.data=$RUN/data"
	-E "path.logs=$RUN/logs"
	-E cluster.routing.allocation.disk.threshold_enabled=false
	-E action.destructive_requires_name=false
)
if [[ $SECURITY == 1 ]]; then
	settings+=(-E xpack.security.enabled=true
		-E xpack.security.http.ssl.enabled=false
		-E xpack.security.transport.ssl.enabled=false
		-E xpack.security.authc.api_key.enabled=true)
	log "security on: creating keystore with bootstrap.password for user elastic"
	as_es_user "${es_env[@]}" "$RUN/home/bin/elasticsearch-keystore" create >/dev/null 2>"$RUN/keystore.log" ||
		{
			cat "$RUN/keystore.log" >&2
			die "elasticsearch-keystore create failed"
		}
	printf '%s' "$PASSWORD" | as_es_user "${es_env[@]}" "$RUN/home/bin/elasticsearch-keystore" add -x -f bootstrap.password \
		>/dev/null 2>>"$RUN/keystore.log" || {
		cat "$RUN/keystore.log" >&2
		die "elasticsearch-keystore add bootstrap.password failed"
	}
	if [[ -n $ROLES_FILE ]]; then
		log "security on: using roles from $ROLES_FILE"
		cp "$ROLES_FILE" "$RUN/config/roles.yml"
		[[ $EUID -ne 0 ]] || chown "$ES_USER" "$RUN/config/roles.yml"
	fi
	for spec in $FILE_USERS; do
		IFS=: read -r u_name u_pw u_roles <<<"$spec"
		log "security on: adding file-realm user $u_name (roles: ${u_roles:-none})"
		u_args=(useradd "$u_name" -p "$u_pw")
		[[ -n $u_roles ]] && u_args+=(-r "$u_roles")
		as_es_user "${es_env[@]}" "$RUN/home/bin/elasticsearch-users" "${u_args[@]}" >/dev/null 2>>"$RUN/keystore.log" || {
			cat "$RUN/keystore.log" >&2
			die "elasticsearch-users useradd $u_name failed" "check CULPRIT_ES_USERS (name:password:role[,role]; password 6+ characters)"
		}
	done
else
	settings+=(-E xpack.security.enabled=false)
fi
for kv in $EXTRA_SETTINGS; do settings+=(-E "$kv"); done

write_state mode=local "url=$URL" "port=$PORT" "version=$VERSION" "security=$SECURITY" \
	"username=$USERNAME" "password=$STATE_PASSWORD" \
	pid= "run_dir=$RUN" "data_dir=$RUN/data" "log_dir=$RUN/logs" "log_file=$LOG_FILE" \
	"es_user=$ES_USER" container=

log "starting Elasticsearch $VERSION as $ES_USER on $URL (runtime dir $RUN)"
# Interrupted (Ctrl-C, a CI timeout): do not leave a half-started node behind.
on_interrupt() {
	trap - INT TERM
	log "interrupted; stopping the node being started"
	bash "$SCRIPT_DIR/es-down.sh" >&2 || true
	exit 130
}
trap on_interrupt INT TERM
start=$SECONDS
# -d: the launcher detaches once the node is up; -p: pid of the server JVM.
# fd 9 (the lock) must not leak into the long-lived server.
as_es_user "${es_env[@]}" "$RUN/home/bin/elasticsearch" -d -p "$PIDFILE" "${settings[@]}" \
	</dev/null >"$STARTUP_LOG" 2>&1 9>&- &
launcher=$!

if ! wait_healthy "$URL" "$USERNAME" "$PASSWORD" "$launcher"; then
	log "---- last 50 lines of $LOG_FILE:"
	tail -n 50 "$LOG_FILE" >&2 2>/dev/null || log "(no log file)"
	log "---- launcher output ($STARTUP_LOG):"
	tail -n 10 "$STARTUP_LOG" >&2 2>/dev/null || true
	kill "$launcher" 2>/dev/null || true
	if [[ -s $PIDFILE ]]; then
		write_state mode=local "url=$URL" "port=$PORT" "version=$VERSION" "security=$SECURITY" \
			"username=$USERNAME" "password=" "pid=$(cat "$PIDFILE")" "run_dir=$RUN" \
			"data_dir=$RUN/data" "log_dir=$RUN/logs" "log_file=$LOG_FILE" "es_user=$ES_USER" container=
	fi
	CULPRIT_ES_KEEP=1 bash "$SCRIPT_DIR/es-down.sh" >&2 || true
	rm -rf "${RUN:?}/home" "$RUN/data" # keep config/ and logs/ for debugging
	die "Elasticsearch $VERSION did not start at $URL; logs kept in $RUN/logs" \
		"read the log above; common causes: an unknown setting in CULPRIT_ES_SETTINGS, the port taken meanwhile (retry)," \
		"too little memory (CULPRIT_ES_HEAP), an unsupported Java (CULPRIT_ES_JAVA_HOME), a slow machine (CULPRIT_ES_TIMEOUT)" \
		"remove the logs with: rm -rf '$RUN'"
fi
# The launcher returns right after the node is ready; the pid file exists by then.
for _ in $(seq 1 30); do
	[[ -s $PIDFILE ]] && break
	sleep 1
done
[[ -s $PIDFILE ]] || die "Elasticsearch answers at $URL but wrote no pid file $PIDFILE" "stop it by hand and retry"
PID=$(cat "$PIDFILE")
wait "$launcher" 2>/dev/null || true
trap - INT TERM

write_state mode=local "url=$URL" "port=$PORT" "version=$VERSION" "security=$SECURITY" \
	"username=$USERNAME" "password=$STATE_PASSWORD" \
	"pid=$PID" "run_dir=$RUN" "data_dir=$RUN/data" "log_dir=$RUN/logs" "log_file=$LOG_FILE" \
	"es_user=$ES_USER" container=
log "Elasticsearch $VERSION is up at $URL (pid $PID, $((SECONDS - start))s to healthy; state: $STATE)"
echo "$URL"
