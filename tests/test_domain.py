"""Plain domain types."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from loopline.domain import TIER_WORKSPACES, WORKFLOW_TIERS, CommitRef, Tier, project_name
from loopline.errors import InvalidReference


def test_commit_ref_accepts_seven_to_forty_hex_digits() -> None:
    assert CommitRef("3F2A9C1").text == "3f2a9c1"
    assert CommitRef("a" * 40).is_full


@pytest.mark.parametrize("text", ["3f2a9c", "xyz1234", "a" * 41, ""])
def test_commit_ref_refuses_what_cannot_be_a_commit(text: str) -> None:
    with pytest.raises(InvalidReference, match="prefix of 7 or more hex digits"):
        CommitRef(text)


def test_tiers_have_the_workspaces_and_workflows_of_the_product() -> None:
    assert TIER_WORKSPACES[Tier.EXPERIMENTATION] == ("dev",)
    assert TIER_WORKSPACES[Tier.SIMPLE] == ("dev", "prod")
    assert TIER_WORKSPACES[Tier.FULL] == ("dev", "test", "prod")
    enabled = {tier: sorted(w for w, tiers in WORKFLOW_TIERS.items() if tier in tiers) for tier in Tier}
    assert enabled[Tier.EXPERIMENTATION] == ["inner-loop", "python-ci"]
    assert enabled[Tier.SIMPLE] == [
        "inner-loop",
        "model-rollback",
        "monitoring",
        "outer-loop-prod",
        "python-ci",
    ]
    assert len(enabled[Tier.FULL]) == 6


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("churn", "churn"),
        ("my proj", "my-proj"),
        ("données", "donnees"),
        ("projé", "proje"),
        ("模型", "project"),
    ],
)
def test_a_folder_names_its_project_with_accents_dropped_not_letters(folder: str, name: str) -> None:
    assert project_name(PurePath("/work") / folder) == name
