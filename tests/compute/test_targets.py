"""Naming compute targets: local, the default, a Ray cluster, and the errors that say what to fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopline.compute.targets import resolve
from loopline.config.sections import ComputeConfig
from loopline.errors import ConfigError, UsageError

LAB = {"kind": "ray", "address": "http://127.0.0.1:8265/"}


def test_local_the_default_and_a_named_cluster() -> None:
    config = ComputeConfig.model_validate({"targets": {"lab": LAB}})
    assert resolve(config, None) is None and resolve(config, "local") is None
    lab = resolve(config, "lab")
    assert lab is not None and lab.address == "http://127.0.0.1:8265" and lab.on_this_machine
    assert lab.settings.workers == 2 and lab.settings.num_cpus == 1
    chosen = resolve(ComputeConfig.model_validate({"default": "lab", "targets": {"lab": LAB}}), None)
    assert chosen is not None and chosen.name == "lab"


def test_an_unknown_target_says_where_it_was_named_and_which_exist() -> None:
    config = ComputeConfig.model_validate({"targets": {"lab": LAB}})
    with pytest.raises(
        UsageError, match=r"--compute names 'gpu', which is not a compute target \(known: local, lab\)"
    ):
        resolve(config, "gpu")
    with pytest.raises(ConfigError, match="batch job 42 names 'old'"):
        resolve(config, "old", "batch job 42")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"default": "gpu"}, "default 'gpu' is not a target"),
        ({"targets": {"local": LAB}}, "'local' is this machine"),
        ({"targets": {"a b": LAB}}, "use letters, digits"),
        ({"targets": {"lab": {"kind": "ray", "address": "head:8265"}}}, "the Ray Jobs API's URL"),
        ({"targets": {"lab": {**LAB, "workers": 0}}}, "greater than 0"),
    ],
)
def test_a_wrong_compute_section_is_refused_with_the_reason(
    settings: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        ComputeConfig.model_validate(settings)
