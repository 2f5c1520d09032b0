"""SLO gates: judge a finished Locust run by the thresholds in slo.toml.

Locust's own exit code only says "some request failed". A team needs "the p95 of the API reads
stayed under 500 ms and under 1 % failed", per endpoint group, so the gates live here and set
the exit code the way Locust's docs recommend (a `quitting` listener, `process_exit_code`).
"""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from locust.stats import RequestStats, StatsEntry

EXIT_CODE_SLO_FAILED = 3


@dataclass(frozen=True)
class GateResult:
    group: str
    requests: int
    failures: int
    fail_ratio: float
    p95_ms: float | None
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def group_of(name: str) -> str:
    """The endpoint group of a request entry: the first word of its name."""
    return name.split(" ", 1)[0]


def load_thresholds(path: str | Path) -> dict:
    with open(path, "rb") as f:
        thresholds = tomllib.load(f)
    unknown = set(thresholds) - {"total", "group"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
    return thresholds


def _merge(entries: list[StatsEntry], stats: RequestStats, group: str) -> StatsEntry:
    merged = StatsEntry(stats, group, "", use_response_times_cache=False)
    for entry in entries:
        merged.extend(entry)
    return merged


def _judge(group: str, entry: StatsEntry, rules: dict) -> GateResult:
    problems = []
    p95 = entry.get_response_time_percentile(0.95) if entry.num_requests else None
    if entry.num_requests < rules.get("min_requests", 0):
        problems.append(f"{entry.num_requests} requests < min_requests {rules['min_requests']}")
    if "max_fail_ratio" in rules and entry.fail_ratio > rules["max_fail_ratio"]:
        problems.append(f"fail ratio {entry.fail_ratio:.2%} > {rules['max_fail_ratio']:.2%}")
    if "p95_ms" in rules and p95 is not None and p95 > rules["p95_ms"]:
        problems.append(f"p95 {p95:.0f} ms > {rules['p95_ms']} ms")
    return GateResult(
        group=group,
        requests=entry.num_requests,
        failures=entry.num_failures,
        fail_ratio=entry.fail_ratio,
        p95_ms=p95,
        problems=tuple(problems),
    )


def evaluate(stats: RequestStats, thresholds: dict) -> list[GateResult]:
    """One result per configured group plus the total; groups without a gate are not judged."""
    by_group: dict[str, list[StatsEntry]] = {}
    for entry in stats.entries.values():
        by_group.setdefault(group_of(entry.name), []).append(entry)
    results = [_judge("total", stats.total, thresholds.get("total", {}))]
    for group, rules in thresholds.get("group", {}).items():
        results.append(_judge(group, _merge(by_group.get(group, []), stats, group), rules))
    return results


def report(results: list[GateResult]) -> str:
    lines = [f"{'SLO gate':<12} {'requests':>9} {'fail %':>7} {'p95 ms':>7}  verdict"]
    for r in results:
        p95 = "-" if r.p95_ms is None else f"{r.p95_ms:.0f}"
        verdict = "ok" if r.passed else "FAIL: " + "; ".join(r.problems)
        lines.append(
            f"{r.group:<12} {r.requests:>9} {r.fail_ratio * 100:>6.2f}% {p95:>7}  {verdict}"
        )
    return "\n".join(lines)


def write_json(results: list[GateResult], path: str | Path) -> None:
    data = [asdict(r) | {"passed": r.passed} for r in results]
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def write_junit(results: list[GateResult], path: str | Path, suite: str = "loadtest") -> None:
    """One test case per gate, so a CI summary counts the gates beside the other suites."""
    failed = [r for r in results if not r.passed]
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(len(failed))
    )
    ts.set("errors", "0")
    ts.set("skipped", "0")
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.slo", name=r.group)
        if not r.passed:
            ET.SubElement(case, "failure", message="; ".join(r.problems))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
