#!/usr/bin/env bash
# check-man.sh PAGE PROGRAM VERSION FLAG...: the man page PAGE, rendered by
# man-db as a reader sees it (plain text, 80 columns), is a page of
# PROGRAM: it renders without a groff warning, its NAME section names
# PROGRAM, it has a SYNOPSIS, its header or footer carries "PROGRAM
# VERSION" (what PROGRAM --version printed when the page was made), and
# it documents every FLAG. A missing or empty page fails.
set -euo pipefail

if [ $# -lt 4 ]; then
	echo "usage: check-man.sh PAGE PROGRAM VERSION FLAG..." >&2
	exit 2
fi
page=$1
prog=$2
version=$3
shift 3

fail() {
	echo "check-man: $page: $*" >&2
	exit 1
}

[ -s "$page" ] || fail "missing or empty"

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
# -l: PAGE is a file, not a name to look up; -P cat: no pager. Without a
# terminal man writes no formatting, and col -b takes out any that a
# MAN_KEEP_FORMATTING in the environment would have kept.
text=$(MANWIDTH=80 man --warnings -l -P cat "$page" 2>"$errors" | col -b) ||
	fail "man failed: $(cat "$errors")"
[ ! -s "$errors" ] || fail "groff warnings: $(cat "$errors")"

# "NAME" on a line of its own, then "PROG - what it is" under it.
grep -qx 'NAME' <<<"$text" || fail "no NAME section"
grep -A1 -x 'NAME' <<<"$text" | grep -qE "^ +$prog - [^ ]" ||
	fail "NAME does not say '$prog - ...'"
grep -qx 'SYNOPSIS' <<<"$text" || fail "no SYNOPSIS section"
grep -qF "$prog $version" <<<"$text" || fail "no '$prog $version'"
for flag in "$@"; do
	grep -qF -- "$flag" <<<"$text" || fail "$flag is not documented"
done
echo "check-man: $page: NAME, SYNOPSIS, $prog $version and $# flags"
