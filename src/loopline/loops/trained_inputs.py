"""Whether a registered version was trained on the data asset versions ``training.inputs`` names now.

A commit has one model: the inner loop of a commit already registered trains nothing, and one that
changed none of ``training.paths`` takes its ancestor's version. A newer version of an input the
configuration does not pin changes the model all the same: where the ancestor's model read another
version, the commit trains; where the commit's own model did, the inner loop says how to train on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from loopline.data import get_asset, parse_asset
from loopline.domain import ModelVersionInfo
from loopline.errors import LooplineError
from loopline.inputs import INPUTS_TAG
from loopline.instance import Instance
from loopline.loops.training_runs import DEV

__all__ = ["NewerInput", "newer_inputs", "retrain_advice"]


@dataclass(frozen=True)
class NewerInput:
    """An input whose data asset version is not the one a model was trained on."""

    name: str  # the input's name in training.inputs
    then: str  # ASSET:VERSION the model was trained on ("" where its run names none)
    now: str  # ASSET:VERSION training.inputs names now

    def __str__(self) -> str:
        return f"input {self.name} was {self.then or 'not read'} and is {self.now} now"


def newer_inputs(instance: Instance, version: ModelVersionInfo) -> list[NewerInput]:
    """Each input of ``training.inputs`` that names another data asset version now than ``version`` (a
    version of dev, whose run says what it read) was trained on; none where there are no inputs, or the
    run or an asset cannot be read (the training then says what is missing)."""
    configured = instance.settings.config.training.inputs
    if not configured or version.run_id is None:
        return []
    try:
        tags = instance.store(DEV).run(version.run_id).tags
        trained = {
            str(k): str(v).split(" ", 1)[0] for k, v in dict(json.loads(tags.get(INPUTS_TAG, "{}"))).items()
        }
        current = {
            name: get_asset(instance, *parse_asset(reference)) for name, reference in configured.items()
        }
    except (LooplineError, ValueError, TypeError):
        return []
    found = []
    for name, asset in current.items():
        now = f"{asset.name}:{asset.version}"
        if trained.get(name) != now:
            found.append(NewerInput(name, trained.get(name, ""), now))
    return found


def retrain_advice(newer: list[NewerInput]) -> str:
    """How to train a commit's model on ``newer`` inputs: pin them and commit (a commit has one model)."""
    pins = ", ".join(f"{item.name}: {item.now}" for item in newer)
    return (
        f"its {'; '.join(map(str, newer))}: a commit trains once, so pin the newer "
        f"{'version' if len(newer) == 1 else 'versions'} in training.inputs ({pins}) and commit to train on "
        f"{'it' if len(newer) == 1 else 'them'}"
    )
