"""JUnit XML, as every CI's test report reads it: a test suite per group (doctor, signup kinds,
hooks, ...), a test case per check, per signup kind and per hook call. A failed error-level check
is a failure; a failed warning passes, with the warning in its output (the exit code does not
count it either)."""

from __future__ import annotations

from collections import defaultdict
from xml.etree import ElementTree as ET

from ghostguard.formats.outcome import Outcome


def document(command: str, outcomes: list[Outcome]) -> str:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.group or command].append(o)
    root = ET.Element("testsuites", name=f"ghostguard {command}")
    for group, members in groups.items():
        failures = sum(1 for o in members if o.failed_error)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"ghostguard {command}: {group}",
            tests=str(len(members)),
            failures=str(failures),
            errors="0",
            skipped="0",
        )
        for o in members:
            case = ET.SubElement(
                suite, "testcase", classname=f"ghostguard.{command}.{group}", name=o.name
            )
            if o.location is not None:
                case.set("file", o.location.path)
                case.set("line", str(o.location.line))
            text = o.said + (f"\nfix: {o.fix}" if o.fix else "")
            if o.failed_error:
                failure = ET.SubElement(case, "failure", message=o.said, type=o.level)
                failure.text = text
            elif not o.passed:
                ET.SubElement(case, "system-out").text = f"warning: {text}"
    root.set("tests", str(len(outcomes)))
    root.set("failures", str(sum(1 for o in outcomes if o.failed_error)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
