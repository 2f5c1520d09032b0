"""The kit's load test: real clients of the stack, through nginx over HTTPS.

Users (weights in their classes): StaticUser (page assets), WebSocketUser and SseUser
(real-time subscribers, login and token), and those a domain app imports below: Locust runs
every user class this module holds. Profiles: profiles/*.conf. Gates: slo.toml.
"""

from __future__ import annotations

import logging
import os

from locust import events
from locust.runners import WorkerRunner

import slo
from kit_users.crud import CrudUser, FanoutPublisher  # noqa: F401  # example
from kit_users.realtime import SseUser, WebSocketUser
from kit_users.static import StaticUser

__all__ = ["SseUser", "StaticUser", "WebSocketUser"]

log = logging.getLogger("slo")


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument(
        "--slo-file",
        default=os.path.join(here, "slo.toml"),
        help="SLO thresholds (TOML); the run fails with exit code 3 when a gate fails",
    )
    parser.add_argument("--slo-report", default="", help="write the gate results as JSON here")
    parser.add_argument("--slo-junit", default="", help="write the gates as JUnit XML here")
    parser.add_argument(
        "--no-slo", action="store_true", help="report the gates, never fail on them"
    )


@events.init.add_listener
def _check_thresholds(environment, **_kwargs) -> None:
    # A typo in slo.toml must stop the run before it starts, not after it.
    if environment.parsed_options is not None:
        slo.load_thresholds(environment.parsed_options.slo_file)


@events.quitting.add_listener
def _gates(environment, **_kwargs) -> None:
    # Workers hold only their share; the master (or a local runner) has the whole run.
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    options = environment.parsed_options
    results = slo.evaluate(environment.stats, slo.load_thresholds(options.slo_file))
    log.info("\n%s", slo.report(results))
    if options.slo_report:
        slo.write_json(results, options.slo_report)
    if options.slo_junit:
        slo.write_junit(results, options.slo_junit)
    failed = [r.group for r in results if not r.passed]
    if failed and not options.no_slo:
        log.error("SLO gates failed: %s", ", ".join(failed))
        environment.process_exit_code = slo.EXIT_CODE_SLO_FAILED
    elif not failed:
        environment.process_exit_code = 0  # the gates, not "any failed request", decide
