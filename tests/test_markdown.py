"""Other people's text in loopline's Markdown renders as the text it is, in a paragraph, a list item, a
table cell and a code span, with a CommonMark renderer and GitHub's tables."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from loopline.markdown import code, text

RENDERER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
ZERO_WIDTH_SPACE = "\u200b"

HOSTILE = [
    "[approve the release here](https://example.invalid/login)",
    "![pixel](https://example.invalid/p.png)",
    '<img src="https://example.invalid/p.png"> and <a href="https://example.invalid">a link</a>',
    "<https://example.invalid/autolink>",
    "a | b | c",
    "`code` and ``more``",
    "# a heading",
    "> a quote",
    "- a list",
    "1. a numbered list",
    "2) another",
    "=== under",
    "$\\color{red}{\\text{ALL CHECKS PASSED}}$",
    "\\[escaped\\](https://example.invalid)",
    "line one\nline two\r\n[a](https://example.invalid)",
    "[x]: https://example.invalid",
]
MARKUP_TAGS = re.compile(r"<(?!/?(p|td|th|tr|table|thead|tbody|ul|li)\b)[a-z]", re.IGNORECASE)


def _shown(rendered: str) -> str:
    """What a reader sees: the tags dropped, entities read, the invisible space gone."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace(ZERO_WIDTH_SPACE, "").strip()


def _one_line(value: str) -> str:
    return re.sub(r"[\r\n]+", " ", value)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_text_renders_as_written_in_a_paragraph_a_list_item_and_a_table_cell(hostile: str) -> None:
    paragraph = RENDERER.render(text(hostile))
    assert not MARKUP_TAGS.search(paragraph), paragraph
    assert _shown(paragraph) == _one_line(hostile)

    item = RENDERER.render(f"- by bob: {text(hostile)}")
    assert not MARKUP_TAGS.search(item), item
    assert item.count("<li>") == 1 and _shown(item) == f"by bob: {_one_line(hostile)}"

    table = RENDERER.render(f"| metric | reason |\n|---|---|\n| accuracy | {text(hostile)} |")
    assert not MARKUP_TAGS.search(table), table
    assert table.count("<td>") == 2, table  # the cell holds the whole text, and no more cells start
    assert _shown(table.split("<td>")[2]) == _one_line(hostile)


def test_a_mention_is_kept_from_notifying_and_reads_the_same() -> None:
    said = text("ping @octo-org/release-managers and @alice")
    assert "@octo" not in said and "@alice" not in said  # GitHub reads `@name` after the Markdown
    assert said.replace(ZERO_WIDTH_SPACE, "") == "ping @octo-org/release-managers and @alice"


def test_emphasis_and_names_with_underscores_are_left_as_written() -> None:
    assert text("val_loss and roc_auc went *up*") == "val_loss and roc_auc went *up*"


@pytest.mark.parametrize("value", ["plain", "a`b", "``x", "x`", "`", "[a](https://example.invalid) <b>"])
def test_code_is_one_span_holding_the_value(value: str) -> None:
    rendered = RENDERER.render(f"the branch {code(value)} ends here")
    spans = re.findall(r"<code>(.*?)</code>", rendered)
    assert len(spans) == 1 and html.unescape(spans[0]).strip() == value.strip(), rendered
    assert rendered.rstrip().endswith("ends here</p>")
