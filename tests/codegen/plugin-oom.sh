#!/bin/sh
# Fails each allocation of protoc-gen-zrpc in turn (failmalloc.so, through
# LD_PRELOAD) while it generates the test protos, and checks that every
# run either succeeds or reports the failure and exits 1: no crash, no
# leak (failmalloc exits 98 on a leak), no partial output on stdout.
#
# protoc runs this script once as the plugin (ZRPC_CODEGEN_CAPTURE set) to
# save the CodeGeneratorRequest; the plugin is then run directly.
#
# Environment (set by meson): ZRPC_CODEGEN_PROTOC, ZRPC_CODEGEN_PLUGIN,
# ZRPC_CODEGEN_PROTO_DIR, ZRPC_CODEGEN_SYSTEM_PROTO_DIR,
# ZRPC_CODEGEN_FAILMALLOC.
set -u

if [ -n "${ZRPC_CODEGEN_CAPTURE:-}" ]; then
	exec cat >"$ZRPC_CODEGEN_CAPTURE"
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/zrpc-codegen-oom.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
self=$(readlink -f "$0")
failed=0

# check PROTO...: runs the plugin on a request for PROTO, failing each
# allocation in turn until a run needs fewer allocations than that.
check() {
	ZRPC_CODEGEN_CAPTURE="$out/request" "$ZRPC_CODEGEN_PROTOC" \
	    --plugin=protoc-gen-zrpc="$self" --zrpc_out="$out" \
	    --proto_path="$ZRPC_CODEGEN_PROTO_DIR" \
	    --proto_path="$ZRPC_CODEGEN_SYSTEM_PROTO_DIR" "$@" || return 1
	n=1
	while :; do
		ZRPC_FAIL_ALLOCATION=$n LD_PRELOAD="$ZRPC_CODEGEN_FAILMALLOC" \
		    "$ZRPC_CODEGEN_PLUGIN" <"$out/request" >"$out/response" \
		    2>"$out/log"
		status=$?
		if ! grep -q 'failmalloc: failed allocation' "$out/log"; then
			if [ $status -ne 0 ]; then
				echo "FAIL: $*: exit $status without a failure"
				cat "$out/log"
				return 1
			fi
			echo "ok: $* ($((n - 1)) allocations failed in turn)"
			return 0
		fi
		case $status in
		0) ;;
		1)
			if [ -s "$out/response" ]; then
				echo "FAIL: $*: allocation $n: output after an error"
				return 1
			fi
			if ! grep -q '^protoc-gen-zrpc: ' "$out/log"; then
				echo "FAIL: $*: allocation $n: exit 1, no message"
				cat "$out/log"
				return 1
			fi
			;;
		*)
			echo "FAIL: $*: allocation $n: exit $status"
			cat "$out/log"
			return 1
			;;
		esac
		n=$((n + 1))
	done
}

# services.proto imports renamed.proto (c_package) and so descriptor.proto:
# its request is large, and most of its allocations are protobuf-c's.
check zrpctest/v1/services.proto || failed=1
check zrpctest/v1/keywords.proto nopkg.proto || failed=1
check zrpctest/v1/collision_snake.proto || failed=1
check zrpctest/v1/streaming.proto || failed=1
exit $failed
