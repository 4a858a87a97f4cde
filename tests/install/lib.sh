# Sourced by greeter-install.sh and greeter-subproject.sh: a scratch
# directory removed on exit, logged steps, and the greeter's check.
#
# Environment (set by meson): ZOS_SOURCE_ROOT, MESON.

src=$ZOS_SOURCE_ROOT
meson=${MESON:-meson}
# Short, under /tmp: an ipc:// path must fit in 108 bytes.
work=$(mktemp -d "${TMPDIR:-/tmp}/zos-greeter.XXXXXX")
server_pid=

greeter_cleanup() {
	if [ -n "$server_pid" ]; then
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap greeter_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# step LOG COMMAND...: runs COMMAND with its output in $work/LOG, and
# shows the end of that on failure.
step() {
	local log=$work/$1
	shift
	echo "+ $*"
	if ! "$@" >"$log" 2>&1; then
		tail -n 80 "$log" >&2
		fail "$*"
	fi
}

# expect_client CLIENT URL NAME: CLIENT's replies are exactly the two
# lines greeter-server gives NAME.
expect_client() {
	local out expected
	expected=$(printf 'Hello, %s!\n20 + 22 = 42' "$3")
	echo "+ $1 $2 $3"
	if ! out=$(timeout 60 "$1" "$2" "$3" 2>"$work/client.log"); then
		cat "$work/client.log" "$work/server.log" >&2
		fail "$1 failed"
	fi
	if [ "$out" != "$expected" ]; then
		printf 'expected:\n%s\ngot:\n%s\n' "$expected" "$out" >&2
		fail "$1: wrong replies"
	fi
}

# greeter_start SERVER: starts SERVER on an ipc:// URL in $work, in $url.
# Nothing waits for it to listen: a client keeps connecting until its
# timeout (10 s), so the first call is the wait.
greeter_start() {
	url=ipc://$work/greeter.sock
	echo "+ $1 $url &"
	"$1" "$url" 2>"$work/server.log" &
	server_pid=$!
}

# greeter_stop: SIGTERM, then the server must exit 0 within 10 s.
greeter_stop() {
	local i status=0
	kill -TERM "$server_pid"
	for i in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		cat "$work/server.log" >&2
		fail "greeter-server still running 10 s after SIGTERM"
	fi
	wait "$server_pid" || status=$?
	server_pid=
	if [ "$status" -ne 0 ]; then
		cat "$work/server.log" >&2
		fail "greeter-server exited $status after SIGTERM"
	fi
	echo "greeter-server stopped on SIGTERM, exit 0"
}

# no_app_dependencies LOG: the meson log LOG shows no lookup of what only
# the application and the tests need.
no_app_dependencies() {
	if grep -inE 'criterion|json-c|zlib' "$1" >&2; then
		fail "a build of zrpc alone looked up an application dependency"
	fi
}
