"""The maintenance window's transition table, walked exhaustively."""

from __future__ import annotations

import itertools

import pytest

from itsm.lifecycles import MAINTENANCE_TRANSITIONS, TransitionNotAllowed, check_transition
from itsm.models import MaintenanceWindow

STATUSES = MaintenanceWindow.Status.values


def test_the_table_covers_every_status_and_only_known_ones():
    assert set(MAINTENANCE_TRANSITIONS) == set(STATUSES)
    assert set().union(*MAINTENANCE_TRANSITIONS.values()) <= set(STATUSES)


# DESIGN.md's lifecycle: scheduled → in_progress → verifying → completed; scheduled → cancelled; a failed gate →
# blocked (retried back to scheduled); failed verification → verification_failed.
DESIGNED_MOVES = [
    ("scheduled", "in_progress"),
    ("in_progress", "verifying"),
    ("verifying", "completed"),
    ("scheduled", "cancelled"),
    ("scheduled", "blocked"),
    ("blocked", "scheduled"),
    ("verifying", "verification_failed"),
]


def test_every_move_of_the_designed_lifecycle_is_in_the_table():
    missing = [
        (current, target) for current, target in DESIGNED_MOVES if target not in MAINTENANCE_TRANSITIONS[current]
    ]
    assert missing == []


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_is_either_allowed_or_refused_naming_the_allowed_states(current, target):
    if target in MAINTENANCE_TRANSITIONS[current]:
        check_transition(MAINTENANCE_TRANSITIONS, current, target)
        return
    with pytest.raises(TransitionNotAllowed) as refused:
        check_transition(MAINTENANCE_TRANSITIONS, current, target)
    assert refused.value.allowed == MAINTENANCE_TRANSITIONS[current]


def test_completed_and_cancelled_are_final():
    assert MAINTENANCE_TRANSITIONS["completed"] == frozenset()
    assert MAINTENANCE_TRANSITIONS["cancelled"] == frozenset()
