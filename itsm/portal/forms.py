"""The portal's forms: they parse and check what a requester typed; the services decide the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from itsm.models import Service, Ticket
from itsm.models.satisfaction import COMMENT_MAX_LENGTH, SCORES
from itsm.services.attachments import Upload
from itsm.uploads import PORTAL_FILES_PER_FORM

SEARCH_MAX_LENGTH = 200


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """Several files from one `<input type="file" multiple>`, as a list (empty when none were chosen)."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        files = [super(FilesField, self).clean(each, initial) for each in files]
        if len(files) > PORTAL_FILES_PER_FORM:
            raise forms.ValidationError(
                ngettext(
                    "Attach at most %(count)d file at once.",
                    "Attach at most %(count)d files at once.",
                    PORTAL_FILES_PER_FORM,
                )
                % {"count": PORTAL_FILES_PER_FORM},
                code="too_many_files",
            )
        return files


def uploads_of(files: list[UploadedFile]) -> list[Upload]:
    return [Upload(filename=f.name or "", content_type=f.content_type or "", data=f) for f in files]


class TicketFilterForm(forms.Form):
    """The list's filter and search, read from the query string."""

    STATES = (("open", _("Open")), ("closed", _("Closed")), ("all", _("All")))

    state = forms.ChoiceField(label=_("Show"), choices=STATES, required=False)
    q = forms.CharField(label=_("Search my tickets"), max_length=SEARCH_MAX_LENGTH, required=False)

    def state_or_default(self) -> str:
        return (self.cleaned_data.get("state") if self.is_valid() else "") or "open"


class NewTicketForm(forms.Form):
    title = forms.CharField(
        label=_("Title"),
        max_length=Ticket._meta.get_field("title").max_length,
        help_text=_("In a few words: what do you need, or what is not working?"),
    )
    description = forms.CharField(
        label=_("Description"),
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text=_("What happened, since when, and what you have tried. Error messages help."),
    )
    service = forms.ModelChoiceField(
        label=_("Service"),
        queryset=Service.objects.order_by("name"),
        required=False,
        empty_label=_("I don't know"),
        help_text=_("Which of our services is this about?"),
    )
    attachments = FilesField(
        label=_("Attachments"),
        required=False,
        help_text=_("Screenshots, logs or documents: up to %(count)d files.") % {"count": PORTAL_FILES_PER_FORM},
    )


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Your reply"), widget=forms.Textarea(attrs={"rows": 5}))
    attachments = FilesField(
        label=_("Attachments"),
        required=False,
        help_text=_("Up to %(count)d files.") % {"count": PORTAL_FILES_PER_FORM},
    )


class MoveForm(forms.Form):
    """Confirm a resolution (to closed) or reopen (to open, with what is still wrong). The choices are the moves
    the requester may make from the ticket's status now."""

    to = forms.ChoiceField(choices=())
    note = forms.CharField(
        label=_("What is still not working?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=5000,
    )

    def __init__(self, *args: Any, moves: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [(move, move) for move in sorted(moves)]  # type: ignore[attr-defined]


SCORE_LABELS = {
    1: _("1, poor"),
    2: _("2, below what I expected"),
    3: _("3, as I expected"),
    4: _("4, good"),
    5: _("5, excellent"),
}


class RatingForm(forms.Form):
    """How satisfied the requester is with a resolved ticket: a score from 1 to 5 and an optional comment."""

    score = forms.TypedChoiceField(
        label=_("How satisfied are you with how we handled this ticket?"),
        choices=[(score, SCORE_LABELS[score]) for score in SCORES],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a score from 1 to 5.")},
    )
    comment = forms.CharField(
        label=_("Anything you would like to tell us?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
    )


class RatingLinkForm(RatingForm):
    """The page a rating link of the resolution e-mail opens: the score is the link's, a comment may be added."""

    score = None  # type: ignore[assignment]  # removes the field: the link carries the score
