"""`--help` that reads at any terminal width, set once for every command.

Typer's rich panels cut a long word in a narrow option column with '…' (80 columns: `gen export
--help`) and keep a docstring's hand line breaks, so a summary broke mid-phrase (`gen distill
--help`). click's own formatter wraps every text and never cuts one; gen's docstrings are prose
paragraphs (rewrapped to the terminal) and example blocks, whose lines are kept as written."""

from __future__ import annotations

import inspect
import re
import textwrap

KEEP_LINES = "\b"  # click: the paragraph after this marker is printed line by line, not rewrapped
WIDTH = 76  # click writes help at most 78 columns wide (its max_width 80, less 2), indented by 2


def plain_help(command) -> None:
    """Switch `command` and every sub-command to click's formatter and prepare their texts for it."""
    command.rich_markup_mode = None
    if command.help:
        command.help = _mark_blocks(command.help)
        summary = inspect.cleandoc(command.help).split("\n\n")[0]
        command.short_help = " ".join(summary.split())  # listed whole and wrapped, not cut at a width
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def _mark_blocks(text: str) -> str:
    """Each paragraph laid out by hand (a line indented, or columns aligned with runs of spaces) gets
    click's keep-lines marker; prose is left to be rewrapped."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(f"{KEEP_LINES}\n{_wrap_block(p)}" if i and _laid_out(p) else p
                       for i, p in enumerate(paragraphs))


def _wrap_block(paragraph: str) -> str:
    """A laid-out paragraph's long lines wrapped at WIDTH, continuing under the text after their label
    (`Example:  `) or indent, a little further in."""
    lines = []
    for line in paragraph.splitlines():
        hang = len(re.match(r"\s*(?:[A-Z][\w ]*:\s+)?", line).group(0)) + 4
        for indent, cut in ((hang, False), (4, False), (4, True)):  # a word too long for the hang goes further left
            wrapped = textwrap.wrap(line, WIDTH, subsequent_indent=" " * indent, break_long_words=cut,
                                    break_on_hyphens=False) or [line]
            if max(map(len, wrapped)) <= WIDTH:
                break
        lines += wrapped
    return "\n".join(lines)


def _laid_out(paragraph: str) -> bool:
    return any(line.startswith(" ") or re.search(r"\S {2,}\S", line) for line in paragraph.splitlines())
