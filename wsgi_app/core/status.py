"""/status: the stack's health and a few live numbers, read from Prometheus' HTTP API, for
staff who would rather look than query (monitoring/README.md has the PromQL behind each)."""

import json
import math
import time
import urllib.parse
import urllib.request

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

# Each number: (label, PromQL, unit). Instant queries, so the page costs a few milliseconds.
NUMBERS = [
    (
        "Requests per second",
        "sum(rate(kit_django_requests_total[1m])) + sum(rate(kit_asgi_requests_total[1m]))",
        "/s",
    ),
    (
        "Server errors (5xx)",
        '(sum(rate(kit_django_requests_total{status=~"5.."}[5m])) or vector(0))'
        " / sum(rate(kit_django_requests_total[5m])) * 100",
        "%",
    ),
    (
        "Django p95 latency",
        "histogram_quantile(0.95, sum by (le) "
        "(rate(kit_django_request_duration_seconds_bucket[5m]))) * 1000",
        "ms",
    ),
    ("Open WebSockets", 'sum(kit_asgi_connections{kind="ws"})', ""),
    ("Open SSE streams", 'sum(kit_asgi_connections{kind="sse"})', ""),
    (
        "Fan-out p95 (event written → sent)",
        "histogram_quantile(0.95, sum by (le) (rate(kit_asgi_fanout_lag_seconds_bucket[5m])))"
        " * 1000",
        "ms",
    ),
    # `> 0`: before the first backup this says "no data", not the hours since 1970.
    (
        "Hours since the last backup",
        "(time() - (max(kit_backup_last_success_timestamp_seconds) > 0)) / 3600",
        "h",
    ),
    (
        "Hours since the last good restore drill",
        "(time() - (max(kit_backup_last_drill_success_timestamp_seconds) > 0)) / 3600",
        "h",
    ),
]


class Unavailable(Exception):
    pass


def prometheus(path: str, **params) -> list:
    url = f"{settings.PROMETHEUS_URL}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own setting)
            body = json.load(response)
    except (OSError, ValueError) as e:
        raise Unavailable(f"Prometheus at {settings.PROMETHEUS_URL} does not answer ({e})") from e
    if body.get("status") != "success":
        raise Unavailable(body.get("error", "Prometheus refused the query"))
    data = body["data"]
    return data["result"] if "result" in data else data["alerts"]


def number(query: str) -> str:
    result = prometheus("query", query=query)
    if not result:
        return "no data"
    value = float(result[0]["value"][1])
    if math.isnan(value):
        return "no data"
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


@login_required
def status(request):
    if not request.user.is_staff:
        raise PermissionDenied
    context = {"numbers": [], "targets": [], "alerts": [], "error": ""}
    try:
        for label, query, unit in NUMBERS:
            context["numbers"].append({"label": label, "value": number(query), "unit": unit})
        for target in sorted(
            prometheus("query", query="up"),
            key=lambda t: (t["metric"].get("job", ""), t["metric"].get("instance", "")),
        ):
            context["targets"].append(
                {
                    "job": target["metric"].get("job", ""),
                    "instance": target["metric"].get("instance", ""),
                    "up": target["value"][1] == "1",
                }
            )
        context["alerts"] = [
            {"name": a["labels"].get("alertname", ""), "state": a["state"], **a["annotations"]}
            for a in prometheus("alerts")
        ]
    except Unavailable as e:
        context["error"] = str(e)
    context["checked"] = time.strftime("%H:%M:%S UTC", time.gmtime())
    return render(request, "core/status.html", context)
