"""A steady load of a few client threads, every answer recorded with its start time and duration."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.system.processes import http


@dataclass(frozen=True)
class Answer:
    path: str
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer at all (refused, reset or timed out)
    headers: dict[str, str]
    body: Any

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@contextmanager
def steady_load(base: str, token: str, paths: list[str], clients: int = 3) -> Iterator[list[Answer]]:
    """`clients` threads, each requesting `paths` in turn without pause, until the block ends."""
    answers: list[Answer] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        turn = offset
        while not stop.is_set():
            path = paths[turn % len(paths)]
            turn += 1
            started = time.monotonic()
            try:
                status, headers, body = http("GET", f"{base}{path}", token=token, timeout=10)
            except OSError as error:
                status, headers, body = 0, {}, repr(error)
            answers.append(Answer(path, started, time.monotonic() - started, status, headers, body))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def slowest(answers: list[Answer]) -> Answer:
    return max(answers, key=lambda answer: answer.seconds)
