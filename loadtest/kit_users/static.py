"""A browser loading assets: finds the hashed /static/ files in real pages, then fetches them."""

from __future__ import annotations

import random
import re

from locust import FastHttpUser, between, task
from locust.exception import StopUser

ASSET = re.compile(r"""(?:href|src)=["'](/static/[^"'?#]+)""")
# Pages whose HTML links the kit's static files; the first that has any is used.
PAGES = ("/", "/admin/login/")


class StaticUser(FastHttpUser):
    weight = 2
    wait_time = between(0.5, 2)
    insecure = True

    assets: list[str]

    def on_start(self) -> None:
        self.assets = []
        for page in PAGES:
            resp = self.client.get(page, name=f"page GET {page}")
            if resp.status_code == 200 and resp.text:
                self.assets = sorted(set(ASSET.findall(resp.text)))
            if self.assets:
                return
        self.environment.events.request.fire(
            request_type="GET",
            name="static no /static/ link in any page",
            response_time=0,
            response_length=0,
            exception=LookupError(f"no /static/ links in {PAGES}"),
            context={},
        )
        raise StopUser()

    @task
    def asset(self) -> None:
        self.client.get(
            random.choice(self.assets),
            headers={"Accept-Encoding": "gzip"},
            name="static GET /static/[asset]",
        )
