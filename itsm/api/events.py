"""Timeline entries (Event rows) as every resource's timeline shows them: tickets, incidents, maintenance windows."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from itsm.models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "kind", "actor", "field", "old_value", "new_value", "note", "created_at"]
        read_only_fields = fields


class PublicUpdateSerializer(EventSerializer):
    """A public status update as requesters read it: without who posted it (the status page names nobody)."""

    def to_representation(self, instance: Event) -> dict[str, Any]:
        return {**super().to_representation(instance), "actor": None}
