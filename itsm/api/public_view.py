"""What requesters are shown of incidents and maintenance windows: the public view, the same as the status page's.

The rule is said once: a model's PUBLIC_FIELDS (itsm.models.incidents, itsm.models.maintenance) are all a requester
reads of a public row, and itsm.roles.sees_public_view_only says who is shown only that. A viewset with this mixin
then gives such users the public rows (`public_queryset`), its public serializer (PUBLIC_FIELDS), `?search=` over
the public title and `?ordering=` by public fields only, and its filterset (PublicViewFilterSet) ignores the filters
on anything else, so a hidden field cannot be found by searching, sorting or filtering on it.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from itsm.roles import sees_public_view_only


def _field(lookup: str) -> str:
    """The model field a filter or an ordering reads: `services__id` reads services, `commander_id` commander."""
    return lookup.lstrip("-").split("__")[0].removesuffix("_id")


class PublicViewFilterSet(django_filters.FilterSet):
    """For users who see the public view, a filter on a field outside `public_fields` is checked as the schema says
    (a malformed value is still a 400 naming it) and then ignored."""

    public_fields: tuple[str, ...] = ()

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if sees_public_view_only(getattr(self.request, "user", None)):
            for name, declared in self.filters.items():
                if _field(declared.field_name) not in self.public_fields:
                    self.form.cleaned_data.pop(name, None)
        return super().filter_queryset(queryset)


class PublicViewMixin:
    """A viewset that shows requesters the public view. Staff get `staff_queryset()`, `serializer_class`,
    `staff_search_fields` and `staff_ordering_fields`; the rest `public_queryset()`, `public_serializer_class`, and
    only those search and ordering fields that the public serializer shows."""

    request: Any
    serializer_class: Any
    public_serializer_class: Any
    staff_search_fields: tuple[str, ...] = ()
    staff_ordering_fields: tuple[str, ...] = ()

    def public_view(self) -> bool:
        # The schema describes the full representation (the public one is a part of it: itsm.api.schema).
        if getattr(self, "swagger_fake_view", False):
            return False
        return sees_public_view_only(self.request.user)

    def staff_queryset(self) -> QuerySet[Any]:
        raise NotImplementedError

    def public_queryset(self) -> QuerySet[Any]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        return self.public_queryset() if self.public_view() else self.staff_queryset()

    def get_serializer_class(self) -> Any:
        return self.public_serializer_class if self.public_view() else self.serializer_class

    def _public_only(self, names: tuple[str, ...]) -> list[str]:
        shown = set(self.public_serializer_class.Meta.fields)
        return [name for name in names if not self.public_view() or _field(name) in shown]

    @property
    def search_fields(self) -> list[str]:
        return self._public_only(self.staff_search_fields)

    @property
    def ordering_fields(self) -> list[str]:
        return self._public_only(self.staff_ordering_fields)
