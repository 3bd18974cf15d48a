"""Transports for notifications: e-mail, signed webhooks and Slack-compatible webhooks, sharing one base."""
