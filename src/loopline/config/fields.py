"""The kinds of value the sections of ``loopline.yaml`` share: safe names, strict sections, database URLs
whose password is written as a URL can hold it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["SIMPLE_NAME_RULE", "SimpleName", "Strict", "Url", "is_simple_name", "url_password"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


SIMPLE_NAME_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit (100 at most)"


def is_simple_name(value: str) -> bool:
    """Whether ``value`` is safe in paths and URLs (``SimpleName``)."""
    return _NAME.match(value) is not None


def _simple(value: str) -> str:
    if not is_simple_name(value):
        raise ValueError(SIMPLE_NAME_RULE)
    return value


SimpleName = Annotated[str, AfterValidator(_simple)]
"""A name that is safe in paths and URLs: a project's, a model's, a compute target's."""


class Strict(BaseModel):
    """A section: no key it does not declare, no change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def url_password(uri: str) -> tuple[str, str, str] | None:
    """``uri`` as what precedes its password (``scheme://user``), the password, and what follows it (from
    the ``@`` before its address), where it has one: the password runs to the last ``@`` before the query,
    so one holding ``@``, ``/`` or ``#`` written as it is is all of it; None where it has none."""
    scheme, sep, rest = uri.partition("://")
    query = rest.find("?")
    at = rest.rfind("@", 0, len(rest) if query < 0 else query)
    if not sep or at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    if not colon or "/" in user or not user.strip():
        return None
    return f"{scheme}://{user}", password, rest[at:]


def _encoded_password(value: str | None) -> str | None:
    """Refuse a database URL whose password holds an ``@`` written as it is (``p@ss``): SQLAlchemy reads
    the address from the first ``@``, so the rest of the password would be taken for the host (and shown
    in errors); the message never repeats it."""
    parts = url_password(value) if value is not None else None
    if parts is not None and "@" in parts[1]:
        raise ValueError(
            "the password in this URL holds '@', which a URL reserves: write it URL-encoded ('@' as %40; "
            'python -c "import getpass, urllib.parse; print(urllib.parse.quote(getpass.getpass(), '
            "safe=''))\" encodes a password typed in)"
        )
    return value


Url = Annotated[str | None, AfterValidator(_encoded_password)]
