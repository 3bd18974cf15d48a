"""Settings of the benchmark server: the platform's own settings plus the two ceiling views of bench/urls.py.

Only `bench/run.py` points DJANGO_SETTINGS_MODULE here, so production never serves the ceiling endpoints.
"""

from itsm_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
