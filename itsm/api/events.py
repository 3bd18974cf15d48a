"""Timeline entries (Event rows) as every resource's timeline shows them: tickets, incidents, maintenance windows."""

from __future__ import annotations

from rest_framework import serializers

from itsm.models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "kind", "actor", "field", "old_value", "new_value", "note", "created_at"]
        read_only_fields = fields
