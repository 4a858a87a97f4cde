#!/usr/bin/env python3
"""Checks a Prometheus text exposition (format 0.0.4) read from FILE.

Usage: check_exposition.py FILE

The text must parse with the Prometheus client's own parser
(prometheus_client.parser.text_string_to_metric_families, Debian's
python3-prometheus-client), and on top of that:
  - every family has a HELP and a TYPE line before its first sample, and
    its samples are contiguous (one family is never split);
  - no series (name and labels) appears twice;
  - counters are named *_total, and every name is snake_case;
  - every histogram series has buckets with increasing le, cumulative
    (non-decreasing) counts, a last bucket le="+Inf" equal to _count, and
    a _sum.
Prints what is wrong and exits 1; exits 0 when all is well.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def fail(message):
    print("check_exposition: " + message, file=sys.stderr)
    sys.exit(1)


def check_lines(text):
    """HELP and TYPE before samples, families contiguous."""
    helped, typed = set(), {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            fail("line %d is empty" % number)
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if name in helped:
                fail("line %d: second HELP for %s" % (number, name))
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4:
                fail("line %d: bad TYPE line: %s" % (number, line))
            name, kind = parts[2], parts[3]
            if name not in helped:
                fail("line %d: TYPE of %s before its HELP" % (number, name))
            typed[name] = kind
            current = name
            continue
        if line.startswith("#"):
            continue
        series = re.split(r"[{ ]", line, maxsplit=1)[0]
        family = current
        if family is None:
            fail("line %d: sample before any TYPE: %s" % (number, line))
        kind = typed[family]
        allowed = {family}
        if kind == "histogram":
            allowed = {family + "_bucket", family + "_sum", family + "_count"}
        if series not in allowed:
            fail("line %d: %s is not a sample of family %s (%s)"
                 % (number, series, family, kind))
    for name, kind in typed.items():
        if not NAME.match(name):
            fail("%s is not snake_case" % name)
        if kind == "counter" and not name.endswith("_total"):
            fail("counter %s does not end in _total" % name)


def check_families(text):
    seen = set()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        fail("the Prometheus parser refuses it: %s" % error)
    if not families:
        fail("no metric families")
    for family in families:
        if not family.documentation:
            fail("%s has no HELP text" % family.name)
        if family.type == "unknown":
            fail("%s has no TYPE" % family.name)
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            if key in seen:
                fail("series %s%s appears twice" % key)
            seen.add(key)
            if math.isnan(sample.value) or sample.value < 0:
                fail("%s%s = %r" % (sample.name, sample.labels, sample.value))
        if family.type == "histogram":
            check_histogram(family)
    return families


def check_histogram(family):
    groups = {}
    for sample in family.samples:
        labels = dict(sample.labels)
        le = labels.pop("le", None)
        key = tuple(sorted(labels.items()))
        group = groups.setdefault(key, {"buckets": [], "sum": None,
                                        "count": None})
        if sample.name.endswith("_bucket"):
            if le is None:
                fail("%s bucket without le" % family.name)
            group["buckets"].append((float(le), sample.value))
        elif sample.name.endswith("_sum"):
            group["sum"] = sample.value
        elif sample.name.endswith("_count"):
            group["count"] = sample.value
    for key, group in groups.items():
        where = "%s%s" % (family.name, dict(key))
        buckets = group["buckets"]
        if not buckets or buckets[-1][0] != float("inf"):
            fail("%s: the last bucket is not le=\"+Inf\"" % where)
        for (le1, c1), (le2, c2) in zip(buckets, buckets[1:]):
            if not le1 < le2:
                fail("%s: le %r then %r" % (where, le1, le2))
            if c2 < c1:
                fail("%s: bucket le=%r has %r, fewer than le=%r's %r"
                     % (where, le2, c2, le1, c1))
        if group["count"] is None or group["sum"] is None:
            fail("%s: no _count or _sum" % where)
        if buckets[-1][1] != group["count"]:
            fail("%s: +Inf bucket %r != _count %r"
                 % (where, buckets[-1][1], group["count"]))


def main():
    if len(sys.argv) != 2:
        fail("usage: check_exposition.py FILE")
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    if not text.endswith("\n"):
        fail("the text does not end with a newline")
    check_lines(text)
    families = check_families(text)
    print("check_exposition: %d families, %d samples, all well"
          % (len(families), sum(len(f.samples) for f in families)))


if __name__ == "__main__":
    main()
