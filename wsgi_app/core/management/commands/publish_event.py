"""Publish one event on a topic, as the apps do after a write (docs/protocol.md, "Events")."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from core import events, realtime


class Command(BaseCommand):
    help = "Publish an event: manage.py publish_event user.42 note.created --data '{...}'"

    def add_arguments(self, parser):
        parser.add_argument("topic", help="<namespace>.<id>, e.g. user.42")
        parser.add_argument("type", help="the event type, e.g. note.created")
        parser.add_argument("--data", default="{}", help="a JSON object (default {})")
        parser.add_argument("--actor", type=int, default=None, help="the acting user's id")
        parser.add_argument("--count", type=int, default=1, help="publish it this many times")
        parser.add_argument("--interval", type=float, default=0.0, help="seconds between them")

    def handle(self, *args, topic, type, data, actor, count, interval, **options):
        namespace, _, id_ = topic.partition(".")
        if namespace not in realtime.namespaces() or not id_.isdigit() or id_.startswith("0"):
            raise CommandError(
                f"topic {topic!r} must be <namespace>.<id> with a positive id and a registered "
                f"namespace ({', '.join(realtime.namespaces())})"
            )
        try:
            payload = json.loads(data)
        except ValueError as e:
            raise CommandError(f"--data is not JSON: {e}") from e
        if not isinstance(payload, dict):
            raise CommandError('--data must be a JSON object, e.g. \'{"text": "hi"}\'')
        if count < 1 or interval < 0:
            raise CommandError("--count must be at least 1 and --interval at least 0")
        for n in range(count):
            if n:
                time.sleep(interval)
            event = events.publish(topic, type, actor, payload)
            if event is None:
                raise CommandError(f"Redis refused event {n + 1} (see the log); stopped there")
            self.stdout.write(event["id"])  # one id per line
