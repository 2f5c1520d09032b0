"""The example's users (boards and cards): a person using the board API, who reads much more
than writes, edits with If-Match and thinks; and the fan-out writer. Importing this module
points the real-time users at the shared board, where the writer's events arrive."""

from __future__ import annotations

import os
import random
import uuid

import gevent.lock
from locust import between, constant_throughput, task
from locust.exception import StopUser

from .common import KitUser, items_of, share_topic

COLUMNS = ("todo", "doing", "done")
# Each user keeps at most this many cards of its own, so long runs do not grow the tables.
MAX_OWN_CARDS = 10


# Every account's users meet on one board: writers' events reach its subscribers.
SHARED_BOARD = os.environ.get("KIT_LOADTEST_BOARD", "loadtest fan-out")

_board_ids: dict[str, int] = {}
_board_lock = gevent.lock.Semaphore()


def if_match(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


def shared_board(user: KitUser) -> int:
    """The account's shared board, created once per process and account."""
    with _board_lock:
        if user.account not in _board_ids:
            _board_ids[user.account] = _find_or_create_board(user)
    return _board_ids[user.account]


def _find_or_create_board(user: KitUser) -> int:
    for _ in range(2):
        resp = user.client.get("/api/boards/", name="api-read GET /api/boards/")
        resp.raise_for_status()
        mine = [b["id"] for b in items_of(resp.json()) if b.get("name") == SHARED_BOARD]
        if mine:
            # Other processes may have raced to create one too: all agree on the oldest.
            return min(mine)
        user.client.post(
            "/api/boards/",
            json={"name": SHARED_BOARD},
            headers=user.unsafe_headers(),
            name="api-write POST /api/boards/",
        ).raise_for_status()
    raise RuntimeError(f"board {SHARED_BOARD!r} was created but is not listed")


share_topic(lambda user: f"board.{shared_board(user)}")


class BoardUser(KitUser):
    """A logged-in user with the account's shared board."""

    abstract = True
    board_id: int

    def on_start(self) -> None:
        super().on_start()
        self.board_id = shared_board(self)


class CrudUser(BoardUser):
    weight = 6
    # Think time: a person reads a page before clicking on.
    wait_time = between(1, 4)

    own: dict[int, int]  # card id -> the version this user last saw

    def on_start(self) -> None:
        self.own = {}  # before login: on_stop runs even when on_start failed
        super().on_start()

    def on_stop(self) -> None:
        for card_id in list(self.own):
            self.delete_card(card_id)

    @task(8)
    def list_boards(self) -> None:
        self.client.get("/api/boards/", name="api-read GET /api/boards/")

    @task(6)
    def read_board(self) -> None:
        self.client.get(f"/api/boards/{self.board_id}/", name="api-read GET /api/boards/[id]/")
        self.client.get(
            f"/api/boards/{self.board_id}/cards/", name="api-read GET /api/boards/[id]/cards/"
        )

    @task(4)
    def read_card(self) -> None:
        if not self.own:
            return
        card_id = random.choice(list(self.own))
        with self.client.get(
            f"/api/cards/{card_id}/", name="api-read GET /api/cards/[id]/", catch_response=True
        ) as resp:
            if resp.status_code == 200:
                self.own[card_id] = resp.json()["version"]

    @task(3)
    def create_card(self) -> None:
        if len(self.own) >= MAX_OWN_CARDS:
            self.delete_card(random.choice(list(self.own)))
            return
        with self.client.post(
            f"/api/boards/{self.board_id}/cards/",
            json={
                "title": f"load test {uuid.uuid4().hex[:8]}",
                "description": "created by the Locust CRUD user",
                "column": random.choice(COLUMNS),
            },
            headers=self.unsafe_headers(),
            name="api-write POST /api/boards/[id]/cards/",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"create card: {resp.status_code} {resp.text[:200]}")
                return
            card = resp.json()
            self.own[card["id"]] = card["version"]

    @task(4)
    def edit_card(self) -> None:
        if not self.own:
            return
        card_id = random.choice(list(self.own))
        with self.client.patch(
            f"/api/cards/{card_id}/",
            json={"column": random.choice(COLUMNS), "title": f"edited {uuid.uuid4().hex[:8]}"},
            headers=self.unsafe_headers(**if_match(self.own[card_id])),
            name="api-write PATCH /api/cards/[id]/",
            catch_response=True,
        ) as resp:
            # Only this user edits its cards: a 412 here would be a lost version, a real bug.
            if resp.status_code != 200:
                resp.failure(f"edit card: {resp.status_code} {resp.text[:200]}")
                return
            self.own[card_id] = resp.json()["version"]

    @task(1)
    def stale_edit_is_refused(self) -> None:
        """What a second browser tab does: edit with an old version. It must get 412."""
        if not self.own:
            return
        card_id = random.choice(list(self.own))
        with self.client.patch(
            f"/api/cards/{card_id}/",
            json={"title": "this edit must be refused"},
            headers=self.unsafe_headers(**if_match(self.own[card_id] - 1)),
            name="api-write PATCH /api/cards/[id]/ stale If-Match",
            catch_response=True,
        ) as resp:
            if resp.status_code == 412:
                resp.success()
            else:
                resp.failure(f"stale If-Match answered {resp.status_code}, not 412")

    @task(1)
    def delete_one(self) -> None:
        if self.own:
            self.delete_card(random.choice(list(self.own)))

    def delete_card(self, card_id: int) -> None:
        with self.client.delete(
            f"/api/cards/{card_id}/",
            headers=self.unsafe_headers(**if_match(self.own[card_id])),
            name="api-write DELETE /api/cards/[id]/",
            catch_response=True,
        ) as resp:
            if resp.status_code not in (200, 204):
                resp.failure(f"delete card: {resp.status_code} {resp.text[:200]}")
        self.own.pop(card_id, None)


class FanoutPublisher(BoardUser):
    """One writer at a steady rate, so subscribers always have events to time.

    Open-loop-ish on purpose: a fixed rate (KIT_FANOUT_RATE events/s) makes a slow fan-out show
    up as latency, not as fewer samples.
    """

    fixed_count = 1
    wait_time = constant_throughput(float(os.environ.get("KIT_FANOUT_RATE", "1")))

    card_id: int | None = None
    version: int = 0

    def on_start(self) -> None:
        super().on_start()
        resp = self.client.post(
            f"/api/boards/{self.board_id}/cards/",
            json={"title": "fan-out probe", "column": "todo"},
            headers=self.unsafe_headers(),
            name="api-write POST /api/boards/[id]/cards/",
        )
        resp.raise_for_status()
        card = resp.json()
        self.card_id, self.version = card["id"], card["version"]

    def on_stop(self) -> None:
        if self.card_id is None:
            return
        self.client.delete(
            f"/api/cards/{self.card_id}/",
            headers=self.unsafe_headers(**if_match(self.version)),
            name="api-write DELETE /api/cards/[id]/",
        )

    @task
    def publish(self) -> None:
        if self.card_id is None:
            raise StopUser()  # on_start could not create the probe card (already recorded)
        with self.client.patch(
            f"/api/cards/{self.card_id}/",
            json={"position": random.randint(0, 1000)},
            headers=self.unsafe_headers(**if_match(self.version)),
            name="api-write PATCH /api/cards/[id]/ publisher",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"publish: {resp.status_code} {resp.text[:200]}")
                return
            self.version = resp.json()["version"]
