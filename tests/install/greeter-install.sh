#!/usr/bin/env bash
# zrpc as a library user gets it: this tree built with -Dapp=false
# -Dtests=false, installed with --prefix=/usr into a staging directory,
# and examples/greeter configured, built and run against that tree alone
# (pkg-config through PKG_CONFIG_SYSROOT_DIR, protoc-gen-zrpc from PATH).
# Checks on the way: the build looks up no application dependency; the
# shared library exports only zrpc_ names; each installed header compiles
# on its own; a client compiled by hand with pkg-config's flags works,
# linked with libzrpc.so and with libzrpc.a (pkg-config --static).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stage=$work/stage
step zrpc-setup.log "$meson" setup "$work/zrpc" "$src" \
    -Dapp=false -Dtests=false --prefix=/usr
no_app_dependencies "$work/zrpc/meson-logs/meson-log.txt"
step zrpc-compile.log "$meson" compile -C "$work/zrpc"
step zrpc-install.log "$meson" install -C "$work/zrpc" --destdir "$stage"

pc=$(find "$stage" -name zrpc.pc)
[ -n "$pc" ] || fail "no zrpc.pc installed"
libdir=$(dirname "$(dirname "$pc")")
for f in usr/bin/protoc-gen-zrpc usr/include/zrpc/client.h \
    usr/include/zrpc/server.h usr/include/zrpc/auth.h \
    usr/include/zrpc/v1/health.zrpc.h \
    usr/include/zrpc/v1/envelope.pb-c.h \
    usr/share/zrpc/proto/zrpc/v1/health.proto \
    usr/share/zrpc/proto/zrpc/v1/options.proto; do
	[ -e "$stage/$f" ] || fail "not installed: /$f"
done
for f in libzrpc.a libzrpc.so libzrpc.so.0; do
	[ -e "$libdir/$f" ] || fail "not installed: $libdir/$f"
done
soname=$(readelf -d "$libdir/libzrpc.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libzrpc.so.0 ] || fail "soname is '$soname', not libzrpc.so.0"

echo "+ nm -D --defined-only libzrpc.so: only zrpc_ names"
exported=$(nm -D --defined-only "$libdir/libzrpc.so" | awk '{print $3}')
[ -n "$exported" ] || fail "libzrpc.so exports nothing"
others=$(grep -v '^zrpc_' <<<"$exported" || true)
if [ -n "$others" ]; then
	echo "$others" >&2
	fail "libzrpc.so exports names without the zrpc_ prefix"
fi

export PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$stage
export PATH=$stage/usr/bin:$PATH
export LD_LIBRARY_PATH=$libdir
cflags=$(pkg-config --cflags zrpc)
echo "+ cc -fsyntax-only $cflags: every installed header on its own"
for h in $(cd "$stage/usr/include" && find zrpc -name '*.h' | sort); do
	# shellcheck disable=SC2086 # word splitting of the flags is meant
	printf '#include "%s"\n' "$h" |
	    cc -Wall -Wextra -Werror -fsyntax-only $cflags -x c - ||
	    fail "$h does not compile on its own"
done

example=$src/examples/greeter
greeter=$work/greeter
step greeter-setup.log "$meson" setup "$greeter" "$example"
grep -q '^Run-time dependency zrpc found: YES' "$work/greeter-setup.log" ||
    fail "the greeter did not find zrpc through pkg-config"
grep -qF "protoc-gen-zrpc found: YES ($stage/usr/bin/protoc-gen-zrpc)" \
    "$work/greeter-setup.log" ||
    fail "the greeter did not find the installed protoc-gen-zrpc"
step greeter-compile.log "$meson" compile -C "$greeter"

# The same client by hand, from the code protoc generated for the build.
gen=("$example/greeter-client.c" "$greeter/greeter.pb-c.c"
    "$greeter/greeter.zrpc.c" -I"$greeter")
# shellcheck disable=SC2046 # word splitting of the flags is meant
step cc-shared.log cc -o "$work/client-shared" "${gen[@]}" \
    $(pkg-config --cflags --libs zrpc)
# shellcheck disable=SC2046
step cc-static.log cc -o "$work/client-static" "${gen[@]}" \
    $(pkg-config --cflags zrpc) \
    $(pkg-config --static --libs zrpc | sed 's/-lzrpc\b/-l:libzrpc.a/')
if readelf -d "$work/client-static" | grep -q 'NEEDED.*libzrpc'; then
	fail "client-static needs libzrpc.so"
fi

greeter_start "$greeter/greeter-server"
expect_client "$greeter/greeter-client" "$url" zrpc
expect_client "$work/client-shared" "$url" shared
expect_client "$work/client-static" "$url" static
greeter_stop
