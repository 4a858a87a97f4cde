#!/usr/bin/env bash
# zrpc as a meson subproject: examples/greeter's files with this tree as
# subprojects/zos (a symlink), configured with the fallback forced (a zrpc
# installed on this machine must not stand in), built and run. The
# subproject builds only the library and the plugin, and the greeter's
# dependency('zrpc') and find_program('protoc-gen-zrpc') get them through
# the subproject's overrides.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$work/src/subprojects"
cp -R "$src/examples/greeter/." "$work/src/"
ln -s "$src" "$work/src/subprojects/zos"

step setup.log "$meson" setup "$work/build" "$work/src" \
    --force-fallback-for=zrpc
grep -q '^Dependency zrpc found: YES .*(overridden)' "$work/setup.log" ||
    fail "zrpc did not come from the subproject's override"
grep -q '^Program protoc-gen-zrpc found: YES (overridden)' \
    "$work/setup.log" ||
    fail "protoc-gen-zrpc did not come from the subproject's override"
no_app_dependencies "$work/build/meson-logs/meson-log.txt"
step compile.log "$meson" compile -C "$work/build"

greeter_start "$work/build/greeter-server"
expect_client "$work/build/greeter-client" "$url" subproject
greeter_stop
