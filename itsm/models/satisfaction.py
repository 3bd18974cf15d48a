from django.conf import settings
from django.db import models

# A rating's score runs from 1 (poor) to 5 (excellent); its comment is optional and at most this long.
SCORES = range(1, 6)
COMMENT_MAX_LENGTH = 2000
# What the API and the admin show of a rating; nobody edits one once given.
RECORDED_FIELDS = ("ticket", "score", "comment", "rated_by", "created_at")


class TicketRating(models.Model):
    """The requester's satisfaction with a resolved ticket: a score from 1 to 5 and an optional comment, given once
    (itsm.services.satisfaction)."""

    ticket = models.OneToOneField("itsm.Ticket", on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField(help_text="1 (poor) to 5 (excellent).")
    comment = models.CharField(max_length=COMMENT_MAX_LENGTH, blank=True)
    rated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=SCORES.start, score__lt=SCORES.stop), name="rating_score_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5 for ticket {self.ticket_id}"
