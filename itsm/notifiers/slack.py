"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, Discord's /slack endpoint): {"text": ...}."""

from __future__ import annotations

import json

from itsm.notifiers.base import Message, Sent
from itsm.notifiers.transport import check_status, post


def _escape(text: str) -> str:
    # Slack's message formatting gives these three characters a meaning; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_of(message: Message) -> str:
    prefix = ":rotating_light: " if message.urgent else ""
    return f"{prefix}*{_escape(message.subject)}*\n{_escape(message.body)}".strip()


def send(message: Message) -> Sent:
    body = json.dumps({"text": text_of(message)}).encode()
    response = post(message.target, body, {"Content-Type": "application/json"})
    check_status(response)
    return Sent(status_code=response.status)
