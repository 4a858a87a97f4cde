#!/bin/sh
# Runs pool-oom ($1) with each of its allocations failing in turn
# (failmalloc, $2, through LD_PRELOAD) and checks that every run either
# succeeds or reports RESOURCE_EXHAUSTED and exits 1: no crash, no other
# status, no leak (failmalloc exits 98 on one).
set -u
exe=$1 failmalloc=$2
log=$(mktemp "${TMPDIR:-/tmp}/zrpc-pool-oom.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
n=1
while [ $n -lt 100000 ]; do
	ZRPC_FAIL_ALLOCATION=$n LD_PRELOAD="$failmalloc" "$exe" 2>"$log"
	status=$?
	if ! grep -q 'failmalloc: failed allocation' "$log"; then
		if [ $status -ne 0 ]; then
			echo "FAIL: exit $status without a failed allocation"
			cat "$log"
			exit 1
		fi
		echo "ok: $((n - 1)) allocations failed in turn"
		exit 0
	fi
	case $status in
	0 | 1) ;;
	*)
		echo "FAIL: allocation $n: exit $status"
		cat "$log"
		exit 1
		;;
	esac
	n=$((n + 1))
done
echo "FAIL: more than $n allocations"
exit 1
