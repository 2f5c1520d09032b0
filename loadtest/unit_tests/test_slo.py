"""The gates decide whether a run passes: test them on Locust's real stats objects."""

from pathlib import Path

import pytest
from locust.stats import RequestStats

import slo

SLO_FILE = Path(__file__).parent.parent / "slo.toml"

THRESHOLDS = {
    "total": {"max_fail_ratio": 0.05, "min_requests": 10},
    "group": {
        "api-read": {"max_fail_ratio": 0.01, "p95_ms": 500, "min_requests": 5},
        "ws-fanout": {"p95_ms": 200, "min_requests": 1},
    },
}


def stats_with(samples: dict[str, list[float]], failures: dict[str, int] | None = None):
    stats = RequestStats(use_response_times_cache=False)
    for name, times in samples.items():
        for ms in times:
            stats.log_request("GET", name, ms, 100)
    for name, count in (failures or {}).items():
        for _ in range(count):
            stats.log_error("GET", name, "boom")
            stats.log_request("GET", name, 10, 0)
    return stats


def by_group(results):
    return {r.group: r for r in results}


def test_healthy_run_passes_every_gate():
    stats = stats_with(
        {"api-read GET /api/items/": [50] * 90 + [300] * 10, "ws-fanout card.updated": [20] * 5}
    )
    results = slo.evaluate(stats, THRESHOLDS)
    assert all(r.passed for r in results), slo.report(results)


def test_slow_p95_fails_only_its_group():
    stats = stats_with(
        {"api-read GET /api/items/": [50] * 90 + [900] * 10, "ws-fanout card.updated": [20] * 5}
    )
    results = by_group(slo.evaluate(stats, THRESHOLDS))
    assert not results["api-read"].passed
    assert "p95" in results["api-read"].problems[0]
    assert results["ws-fanout"].passed


def test_entries_of_a_group_are_judged_together():
    # Each endpoint alone is fast enough at p95, the group is not: 2 of 20 slow reads are 10 %.
    stats = stats_with(
        {
            "api-read GET /api/items/": [50] * 19 + [2000],
            "api-read GET /api/cards/[id]/": [50] * 19 + [2000],
            "ws-fanout card.updated": [20],
        }
    )
    results = by_group(slo.evaluate(stats, THRESHOLDS))
    assert results["api-read"].requests == 40
    assert results["api-read"].p95_ms == pytest.approx(2000)
    assert not results["api-read"].passed


def test_failure_ratio_over_threshold_fails():
    stats = stats_with(
        {"api-read GET /api/items/": [50] * 95, "ws-fanout card.updated": [20]},
        failures={"api-read GET /api/items/": 5},
    )
    results = by_group(slo.evaluate(stats, THRESHOLDS))
    assert results["api-read"].failures == 5
    assert not results["api-read"].passed
    assert results["total"].passed  # 5 of 101 is under the total's 5 %


def test_a_gate_without_data_fails_instead_of_passing():
    stats = stats_with({"api-read GET /api/items/": [50] * 20})
    results = by_group(slo.evaluate(stats, THRESHOLDS))
    assert not results["ws-fanout"].passed
    assert "min_requests" in results["ws-fanout"].problems[0]


def test_the_shipped_thresholds_load_and_name_real_groups():
    thresholds = slo.load_thresholds(SLO_FILE)
    assert set(thresholds["group"]) == {
        "api-read",  # example
        "api-write",  # example
        "login",
        "auth",
        "static",
        "ws-connect",
        "ws-fanout",  # example
        "sse-connect",
        "sse-fanout",  # example
    }


def test_unknown_section_is_refused(tmp_path):
    bad = tmp_path / "slo.toml"
    bad.write_text("[totl]\nmax_fail_ratio = 0.1\n")
    with pytest.raises(ValueError, match="unknown sections"):
        slo.load_thresholds(bad)


def test_report_and_json_say_which_gate_failed(tmp_path):
    stats = stats_with({"api-read GET /api/items/": [900] * 20})
    results = slo.evaluate(stats, THRESHOLDS)
    text = slo.report(results)
    assert "FAIL" in text
    assert "api-read" in text
    out = tmp_path / "slo.json"
    slo.write_json(results, out)
    assert '"passed": false' in out.read_text()


def test_junit_counts_one_case_per_gate_and_marks_the_failed_ones(tmp_path):
    import xml.etree.ElementTree as ET

    stats = stats_with({"api-read GET /api/items/": [900] * 20})
    out = tmp_path / "slo.xml"
    slo.write_junit(slo.evaluate(stats, THRESHOLDS), out)
    suite = ET.parse(out).getroot().find("testsuite")  # noqa: S314 (a file this test wrote)
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "2"  # api-read too slow, ws-fanout without samples
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"api-read", "ws-fanout"}
