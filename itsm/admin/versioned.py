"""The admin's change forms refuse a stale save (docs/api.md#concurrency): the form carries the version it was
opened at in a hidden field, and its clean() compares it under the row lock, in the transaction that the admin's
change view holds around the save (itsm.services.versioned.version_lock). The save bumps the version."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import HttpRequest

from itsm.exceptions import StaleVersion
from itsm.services.versioned import version_lock

SEEN_VERSION = "seen_version"
STALE = "Someone else changed this {noun} since you opened it; reload to see their change."


class VersionCheckedForm(forms.ModelForm):
    seen_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields[SEEN_VERSION].initial = self.instance.version

    @property
    def changed_data(self) -> list[str]:
        """The fields edited: the version the form was opened at is not one (save_model hands them to a service)."""
        return [name for name in super().changed_data if name != SEEN_VERSION]

    def clean(self) -> dict[str, Any]:
        super().clean()
        seen = self.cleaned_data.get(SEEN_VERSION)
        # A post without the field (a form from before this check) is not checked: there is nothing to compare.
        if self.instance.pk is not None and seen is not None:
            try:
                version_lock(model=type(self.instance), pk=self.instance.pk, expected_version=seen)
            except StaleVersion:
                raise ValidationError(STALE.format(noun=self.instance._meta.verbose_name), code="stale") from None
        return self.cleaned_data


class VersionedAdmin:
    """First among a ModelAdmin's bases, for a Versioned model: the change form refuses a stale save, and a save
    that writes the row itself bumps its version (one that goes through a service is bumped there)."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None and "form" not in kwargs:
            base = self.form  # type: ignore[attr-defined]
            kwargs["form"] = type(base.__name__, (VersionCheckedForm, base), {})
        return super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is None or SEEN_VERSION in flatten_fieldsets(fieldsets):
            return fieldsets
        *first, (name, options) = fieldsets
        return [*first, (name, {**options, "fields": [*options["fields"], SEEN_VERSION]})]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            obj.version = F("version") + 1
        super().save_model(request, obj, form, change)  # type: ignore[misc]
