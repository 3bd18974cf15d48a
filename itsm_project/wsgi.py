"""WSGI entry point. Runs the platform's own system checks first, so a production mistake stops the start."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itsm_project.settings")

application = get_wsgi_application()

from itsm.checks import fail_on_errors  # noqa: E402  (needs the app registry loaded above)

fail_on_errors()
