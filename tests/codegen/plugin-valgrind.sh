#!/bin/sh
# Runs protoc-gen-zrpc under valgrind on every test proto, good and bad,
# and fails on any memory error or leak.
#
# protoc runs this script as the plugin (ZRPC_CODEGEN_AS_PLUGIN set), and
# the script runs the real plugin under valgrind, with stdin and stdout
# passed through. Valgrind's exit code 99 means a memory error; protoc
# then reports "Plugin failed with status code 99".
#
# Environment (set by meson): ZRPC_CODEGEN_PROTOC, ZRPC_CODEGEN_PLUGIN,
# ZRPC_CODEGEN_PROTO_DIR, ZRPC_CODEGEN_SYSTEM_PROTO_DIR,
# ZRPC_CODEGEN_VALGRIND.
set -u

if [ -n "${ZRPC_CODEGEN_AS_PLUGIN:-}" ]; then
	exec "$ZRPC_CODEGEN_VALGRIND" --quiet --error-exitcode=99 \
	    --leak-check=full --show-leak-kinds=all \
	    --errors-for-leak-kinds=all "$ZRPC_CODEGEN_PLUGIN"
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/zrpc-codegen-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
export ZRPC_CODEGEN_AS_PLUGIN=1
self=$(readlink -f "$0")
failed=0

# run PROTO EXPECT: EXPECT is "ok" or "fail" (the plugin's own error).
run() {
	"$ZRPC_CODEGEN_PROTOC" --plugin=protoc-gen-zrpc="$self" \
	    --zrpc_out="$out" --proto_path="$ZRPC_CODEGEN_PROTO_DIR" \
	    --proto_path="$ZRPC_CODEGEN_SYSTEM_PROTO_DIR" \
	    --proto_path="$ZRPC_CODEGEN_ZRPC_PROTO_DIR" "$1" \
	    >"$out/log" 2>&1
	status=$?
	if grep -q 'status code 99' "$out/log" ||
	    { [ "$2" = ok ] && [ $status -ne 0 ]; } ||
	    { [ "$2" = fail ] && [ $status -eq 0 ]; }; then
		echo "FAIL: $1 (expected $2, protoc exited $status)"
		cat "$out/log"
		failed=1
	else
		echo "ok: $1 ($2)"
	fi
}

run nopkg.proto ok
run zrpctest/cpkg/renamed.proto ok
run zrpctest/v1/common.proto ok
run zrpctest/v1/keywords.proto ok
run zrpctest/v1/proto3_optional.proto ok
run zrpctest/v1/services.proto ok
run zrpctest/v1/roles.proto ok
run zrpctest/v1/bad_role.proto fail
run zrpctest/v1/collision_async.proto fail
run zrpctest/v1/collision_field.proto fail
run zrpctest/v1/collision_register.proto fail
run zrpctest/v1/collision_services.proto fail
run zrpctest/v1/collision_snake.proto fail
run zrpctest/v1/server_streaming.proto fail
run zrpctest/v1/streaming.proto fail
run zrpc/runtime_namespace.proto fail
exit $failed
