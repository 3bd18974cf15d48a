"""An SMTP server that keeps what it receives: run as `python -m tests.mail.smtp_capture PORT DIRECTORY`, it listens
on 127.0.0.1:PORT and writes each message to DIRECTORY as `<n>.eml` (the bytes as received) beside `<n>.json`
(the envelope: mail_from, rcpt_tos), the JSON last, so a reader that sees it sees the whole message."""

from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        number = next(self.numbers)
        raw = envelope.original_content or b""
        (self.directory / f"{number:05d}.eml").write_bytes(raw)
        envelope_file = self.directory / f"{number:05d}.json"
        partial = envelope_file.with_suffix(".json.part")
        partial.write_text(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}))
        partial.rename(envelope_file)
        return "250 Message accepted"


def main() -> None:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(Keep(directory), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
