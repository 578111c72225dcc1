"""Other people's text inside the Markdown loopline writes (GitHub step summaries, pull-request comments,
archived reports): shown as written, never as a link, an image, HTML, math, a table cell's end, a heading
or a mention.

A reason, a model's answer or a name quoted in a summary is somebody's input. GitHub renders a summary
and a comment as Markdown, so ``[approve here](https://…)`` would be a link dressed as another,
``<img src=…>`` an image fetched from anywhere, ``|`` the end of a table cell, and ``@org/team`` a
mention that notifies a team. ``text`` and ``code`` keep each piece what it says.
"""

from __future__ import annotations

import re

__all__ = ["code", "text"]

# The ASCII punctuation that makes a link, an image, raw HTML, a code span, math (`$`) or a table cell's
# end inside a line of GitHub's Markdown, and the backslash itself. CommonMark lets a backslash escape
# any ASCII punctuation, so the escaped text reads the same once rendered. Emphasis (`*`, `_`, `~`) is
# left as it is: it changes no more than a word's look, and metric names are full of underscores.
_INLINE = re.compile(r"([\\`\[\]<>|$])")
# What makes a block of a line's start: a heading, a quote, a list item, a setext underline.
_BLOCK_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d+)([.)]))")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
_ZERO_WIDTH_SPACE = "\u200b"


def _one_line(value: object) -> str:
    return _LINE_BREAKS.sub(" ", str(value))


def _unblocked(found: re.Match[str]) -> str:
    indent, marker, number, after = found.groups()
    return indent + ("\\" + marker if marker else number + "\\" + after)


def text(value: object) -> str:
    """``value`` as plain text on one line of Markdown (a paragraph, a list item or a table cell)."""
    escaped = _INLINE.sub(r"\\\1", _one_line(value))
    escaped = _BLOCK_START.sub(_unblocked, escaped)
    # GitHub reads mentions after the Markdown, so no escape stops one: an invisible space does.
    return escaped.replace("@", "@" + _ZERO_WIDTH_SPACE)


def code(value: object) -> str:
    """``value`` as one code span: fenced with more backticks than any run of them in it (CommonMark's
    rule), so nothing in it ends the span early. Not for a table cell, where a ``|`` would still end it:
    ``text`` is."""
    inner = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", inner)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {inner} " if inner.startswith("`") or inner.endswith("`") or not inner.strip() else inner
    return f"{fence}{padded}{fence}"
