"""Reading the YAML files people write (``loopline.yaml``, gates, rankings, policies, params).

libyaml's parser where PyYAML has it (its wheels do): several times faster than the pure-Python one. A key
written twice in one mapping is refused: YAML would keep the last one and drop the other without a word,
so a section appended below one the file has already (``datastores:`` twice) would quietly undo an edit.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

__all__ = ["DuplicateKey", "Loader"]

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKey(ConstructorError):
    """A key written twice in one mapping; ``problem`` says which, and where it was first."""


class Loader(_BASE):  # type: ignore[valid-type,misc]
    """A safe loader that refuses a key repeated in one mapping, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise DuplicateKey(
                    problem=f"'{key_node.value}' is a key here already (line {seen[key_node.value]}), and "
                    "YAML would keep only the last; merge the two into one",
                    problem_mark=key_node.start_mark,
                )
            seen[key_node.value] = line
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]
