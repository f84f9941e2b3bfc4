#!/usr/bin/env python3
"""Reads the tiers' JUnit XML reports and prints one table plus the closing
line 'N passed, N failed, N skipped'. Skips are listed with their reasons so a
skipped test is never mistaken for a passing one."""
import sys
import xml.etree.ElementTree as ET


def tier_counts(path):
    root = ET.parse(path).getroot()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    skips = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
            msg = case.find("skipped").get("message", "")
            skips.append("%s::%s: %s" % (case.get("classname"), case.get("name"), msg))
        else:
            counts["passed"] += 1
    # collection errors are reported as <error> on a testsuite without testcases
    for suite in root.iter("testsuite"):
        if int(suite.get("errors", 0)) and not list(suite.iter("testcase")):
            counts["failed"] += int(suite.get("errors"))
    return counts, skips


def main(argv):
    total = {"passed": 0, "failed": 0, "skipped": 0}
    rows, all_skips, missing = [], [], []
    for arg in argv[1:]:
        tier, _, path = arg.partition("=")
        try:
            counts, skips = tier_counts(path)
        except (IOError, OSError, ET.ParseError) as e:
            missing.append("%s: no report (%s)" % (tier, e))
            total["failed"] += 1
            continue
        if not sum(counts.values()):
            # a tier that ran nothing has failed, whatever its exit code said
            missing.append("%s: the report holds no test" % tier)
            counts["failed"] += 1
        rows.append((tier, counts))
        all_skips += ["[%s] %s" % (tier, s) for s in skips]
        for k in total:
            total[k] += counts[k]
    print("\n%-10s %7s %7s %7s" % ("tier", "passed", "failed", "skipped"))
    for tier, c in rows:
        print("%-10s %7d %7d %7d" % (tier, c["passed"], c["failed"], c["skipped"]))
    for m in missing:
        print("MISSING   " + m)
    if all_skips:
        print("\nskipped (not counted as passing):")
        for s in all_skips:
            print("  " + s)
    print("\n%d passed, %d failed, %d skipped" % (total["passed"], total["failed"], total["skipped"]))
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
