"""A sign-in through the identity provider or the directory that moves someone into or out of a team changes the
team: its ETag moves, so an edit of the team read before cannot put the old membership back."""

from __future__ import annotations

from typing import Any

from itsm.models import Team
from itsm.services.users import teams_set
from tests.factories import TeamFactory, make_user


def test_a_sign_in_that_changes_a_teams_members_moves_its_etag(client_for: Any, admin: Any) -> None:
    network, database = TeamFactory.create(slug="network"), TeamFactory.create(slug="database")
    alice = make_user("alice", "agent")
    read = client_for(admin).get(f"/api/v1/teams/{network.pk}/")
    assert read.status_code == 200

    teams_set(alice, member_of={"network"}, managed={"network", "database"})
    assert list(Team.objects.get(pk=network.pk).members.all()) == [alice]

    stale = client_for(admin).patch(
        f"/api/v1/teams/{network.pk}/", {"members": []}, format="json", HTTP_IF_MATCH=read["ETag"]
    )
    assert stale.status_code == 412
    assert list(Team.objects.get(pk=network.pk).members.all()) == [alice]
    assert Team.objects.get(pk=database.pk).version == database.version  # not a member before or after


def test_a_sign_in_that_changes_nothing_leaves_the_etags_alone(admin: Any) -> None:
    network = TeamFactory.create(slug="network")
    alice = make_user("alice", "agent")
    teams_set(alice, member_of={"network"}, managed={"network"})
    version = Team.objects.get(pk=network.pk).version
    teams_set(alice, member_of={"network"}, managed={"network"})
    assert Team.objects.get(pk=network.pk).version == version
