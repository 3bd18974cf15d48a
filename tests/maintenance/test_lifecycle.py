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


def test_the_issues_lifecycle_is_allowed():
    for current, target in [
        ("scheduled", "in_progress"),
        ("in_progress", "verifying"),
        ("verifying", "completed"),
        ("scheduled", "cancelled"),
        ("scheduled", "blocked"),
        ("verifying", "verification_failed"),
        ("blocked", "scheduled"),
    ]:
        check_transition(MAINTENANCE_TRANSITIONS, current, target)


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
