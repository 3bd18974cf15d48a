"""E-mail through Django's mail backend (configured by EMAIL_URL)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives

from itsm.notifiers.base import Message, PermanentError, Sent, TransientError


def send(message: Message) -> Sent:
    # RFC 3834: mail the platform writes is automatic, so that auto-responders do not answer it (and loop).
    headers = {"X-ITSM-Notification": str(message.notification_id), "Auto-Submitted": "auto-generated"}
    if message.urgent:
        headers |= {"X-Priority": "1", "Importance": "high"}
    headers |= message.headers
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.target],
        headers=headers,
    )
    if message.html_body:
        email.attach_alternative(message.html_body, "text/html")
    try:
        sent = email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        error = PermanentError if codes and all(code >= 500 for code in codes) else TransientError
        raise error(f"recipient refused: {exc.recipients}") from None
    except smtplib.SMTPResponseException as exc:
        # 5xx is the server's final answer (bad sender, rejected content, wrong credentials); 4xx is "later".
        error = PermanentError if exc.smtp_code >= 500 else TransientError
        raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from None
    except (BadHeaderError, ValueError) as exc:
        raise PermanentError(f"not a valid e-mail: {exc}") from None
    if not sent:
        raise TransientError("the mail backend accepted nothing")
    return Sent()
