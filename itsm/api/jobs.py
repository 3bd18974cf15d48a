"""/api/v1/jobs/: the scheduled jobs of the Beat schedule with their last run and next due time (agents and
admins read; requesters get 403), and "run now" for admins (202 with the queued run)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from itsm.api.permissions import IsAgentReadsAdminWrites
from itsm.models import JobRun
from itsm.services.deadman import JobState, job_states
from itsm.services.job_schedule import ScheduledJob, job_get, jobs_all
from itsm.services.jobs import job_run_request

RECENT_RUNS = 20
NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The job's name.")


class JobRunSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.get_username", default=None, allow_null=True)

    class Meta:
        model = JobRun
        fields = [
            "id",
            "job",
            "trigger",
            "status",
            "slot",
            "started_at",
            "finished_at",
            "duration_seconds",
            "requested_by",
            "detail",
        ]
        read_only_fields = fields


class JobSerializer(serializers.Serializer):
    """A job of the Beat schedule and how it is doing."""

    name = serializers.CharField(source="job.name")
    task = serializers.CharField(source="job.task")
    args = serializers.ListField(source="job.args", child=serializers.JSONField())
    queue = serializers.CharField(source="job.queue")
    schedule = serializers.CharField(source="job.describe", help_text="The schedule in words.")
    cron = serializers.CharField(source="job.cron", allow_null=True, help_text="A crontab job's expression.")
    period_seconds = serializers.SerializerMethodField()
    grace_seconds = serializers.SerializerMethodField(help_text="How late a run may start before it is missed.")
    state = serializers.ChoiceField(choices=["ok", "missed", "failing", "never_run"])
    missed_due_at = serializers.DateTimeField(
        source="missed_due", allow_null=True, help_text="The due time the job missed (state missed)."
    )
    next_due_at = serializers.DateTimeField(source="next_due")
    watched_since = serializers.DateTimeField(allow_null=True)
    last_run = JobRunSerializer(allow_null=True)
    last_success_at = serializers.DateTimeField(source="last_success.finished_at", default=None, allow_null=True)

    def get_period_seconds(self, state: JobState) -> float:
        return state.job.period(self.context["now"]).total_seconds()

    def get_grace_seconds(self, state: JobState) -> float:
        return state.job.grace().total_seconds()


class JobDetailSerializer(JobSerializer):
    runs = serializers.SerializerMethodField(help_text=f"The {RECENT_RUNS} newest runs, newest first.")

    @extend_schema_field(JobRunSerializer(many=True))
    def get_runs(self, state: JobState) -> Any:
        runs = JobRun.objects.filter(job=state.job.name).select_related("requested_by").order_by("-id")
        return JobRunSerializer(runs[:RECENT_RUNS], many=True).data


class JobViewSet(viewsets.GenericViewSet):
    """The jobs of the Beat schedule (app.conf.beat_schedule): one source of truth, nothing stored but runs."""

    queryset = JobRun.objects.none()
    serializer_class = JobSerializer
    permission_classes = [IsAgentReadsAdminWrites]
    filter_backends: list[type] = []
    lookup_field = "name"
    lookup_value_regex = r"[\w.-]+"

    def _job(self, name: str) -> ScheduledJob:
        job = job_get(name)
        if job is None:
            raise NotFound(f"No scheduled job is named {name!r}.")
        return job

    @extend_schema(summary="Scheduled jobs with their schedule, last run and next due time (agents and admins)")
    def list(self, request: Request) -> Response:
        jobs = self.paginate_queryset(jobs_all()) or []
        states = job_states(jobs)
        context = {"now": timezone.now()}
        return self.get_paginated_response(JobSerializer(states, many=True, context=context).data)

    @extend_schema(
        summary="One scheduled job with its newest runs (agents and admins)",
        parameters=[NAME],
        responses=JobDetailSerializer,
    )
    def retrieve(self, request: Request, name: str) -> Response:
        (state,) = job_states([self._job(name)])
        return Response(JobDetailSerializer(state, context={"now": timezone.now()}).data)

    @extend_schema(
        summary="Run a job now, on its own queue with its schedule's arguments (admins)",
        parameters=[NAME],
        request=None,
        responses={
            202: OpenApiResponse(
                inline_serializer(
                    name="JobRunQueued",
                    fields={"run": JobRunSerializer(), "job_url": serializers.URLField()},
                ),
                description="The run is queued; follow it in the job's runs (GET job_url).",
            )
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request: Request, name: str) -> Response:
        job = self._job(name)
        run = job_run_request(job=job.name, queue=job.queue, requested_by=request.user)
        url = request.build_absolute_uri(reverse("job-detail", kwargs={"name": job.name}))
        body = {"run": JobRunSerializer(run).data, "job_url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
