"""Policy files: the sample's reads as written; a broken one is refused with the line or rule at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from loopline.errors import ConfigError, NotFound
from loopline.monitoring.policy import load_policy

SAMPLE = Path(loopline.__file__).parent / "templates" / "project" / "monitoring" / "policy.yaml"


def test_the_sample_policy_reads_with_its_rules_and_digest(tmp_path: Path) -> None:
    policy = load_policy(SAMPLE)
    assert [rule["action"] for rule in policy.rules][:2] == ["rollback", "rollback"]
    assert policy.default == "no-change" and policy.version == 1
    copy = tmp_path / "policy.yaml"
    copy.write_text(SAMPLE.read_text() + "# a comment\n")
    assert load_policy(copy).digest != policy.digest  # the digest is of the file's text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nrules:\n  - when: {error_rate: {above: 0.1}\n    action: rollback\n",
            r"policy\.yaml line \d+: not valid YAML",
        ),
        ("rules: []\n", "a policy has 'version' and a list of 'rules'"),
        (
            "version: 1\nrules:\n  - when: {error_rate: {above: 0.1}}\n    action: reboot\n",
            r"rules\[0\] needs 'when'",
        ),
        (
            "version: 1\nrules:\n  - when: {error_rate: {above: high}}\n    action: rollback\n",
            "must be numbers",
        ),
        (
            "version: 1\nrules:\n  - when: {max_psi: {above: .nan}}\n    action: rollback\n",
            "a threshold of 'max_psi' is .nan, which no signal meets",
        ),
    ],
    ids=["syntax", "no version", "unknown action", "threshold not a number", "threshold not a number at all"],
)
def test_a_broken_policy_is_refused_with_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_policy(path)


def test_a_missing_policy_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"policy file .* does not exist; write one \(see docs/monitoring\.md\)"
    ):
        load_policy(tmp_path / "absent.yaml")


def test_a_rollback_decided_on_the_first_release_is_audited_as_not_carried_out(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    # Drift on the only release prod has had: the hourly workflow failed on "no earlier release" every
    # hour, and the decision went unrecorded. It is recorded now, saying why nothing was done.
    from loopline.instance import Instance
    from loopline.loops.policy import carry_out
    from loopline.monitoring.policy import Decision

    project, first, _ = a_live_b_registered
    live = loopline.get_endpoint("proj", project=project).main_deployment()
    assert live is not None and live.git_commit == first
    evidence = {"version": live.version, "git_commit": first}
    decision = Decision("d1", "rollback", "input drift", "proj", 1, {}, evidence)
    done = carry_out(Instance.open(project), decision)
    assert (done.acted, done.outcome) == (
        False,
        f"not rolled back: proj has no release before v{live.version} ({first[:7]}) to return to; look at "
        "the signals (retrain, or release another version)",
    )
    audited = loopline.history(project, kind="policy-decided")[-1].event
    assert audited.details["outcome"] == done.outcome and audited.details["acted"] is False
    # A person asking for the previous release is still told there is none.
    with pytest.raises(NotFound, match="no earlier release"):
        loopline.rollback(previous=True, project=project)
