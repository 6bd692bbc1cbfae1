"""Nicknames people can tell apart: normalised, and unique up to lookalikes.

A nickname is NFKC-normalised (fullwidth ``ａｌｉｃｅ`` becomes ``alice``), loses
its invisible characters, and is compared with the others by a lookalike key: the
Unicode confusables data (UTS #39, as shipped by ``confusable-homoglyphs``) folds
characters that look alike, such as Cyrillic ``а`` and Latin ``a``, or ``l``, ``I``
and ``1``, into one class.  Two names with the same key cannot be told apart on
screen, so they count as the same name.
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables

ZERO_WIDTH_JOINER = "\u200d"
# Letters that render as blank space but are not category Cf or whitespace.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(ch: str) -> bool:
    """Tell whether ``ch`` shows nothing (format characters and blank letters)."""
    return unicodedata.category(ch) == "Cf" or ch in BLANK_LETTERS


def clean_name(name: str) -> str:
    """Return ``name`` NFKC-normalised, without invisible characters (a joiner
    inside an emoji sequence stays), its spaces collapsed."""
    name = unicodedata.normalize("NFKC", name)
    kept = []
    for index, ch in enumerate(name):
        if ch == ZERO_WIDTH_JOINER and _joins_symbols(name, index):
            kept.append(ch)
        elif not is_invisible(ch):
            kept.append(ch)
    return " ".join("".join(kept).split())


def _joins_symbols(text: str, index: int) -> bool:
    """Tell whether the joiner at ``index`` sits between two symbols (an emoji
    sequence such as a family), where it changes what is drawn."""
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return _is_symbol(before) and _is_symbol(after)


def _is_symbol(ch: str) -> bool:
    """Tell whether ``ch`` is an emoji-like symbol or modifier."""
    return bool(ch) and unicodedata.category(ch) in ("So", "Sk", "Mn")


def lookalike_keys(name: str) -> frozenset[str]:
    """Return the keys under which names that look alike are equal.

    Two names clash when they share a key.  Lookalikes are folded after case
    ("ALICE" is "alice") and before it too ("AIice", with a capital I, looks like
    "alice" although its lower case does not).
    """
    text = unicodedata.normalize("NFKC", name)
    visible = " ".join("".join(ch for ch in text if not is_invisible(ch)).split())
    after_case = _class_of(visible.casefold())
    before_case = _class_of(_class_of(visible).casefold())
    return frozenset((after_case, before_case))


def _class_of(text: str) -> str:
    """Return the representative of the lookalike class of each character."""
    classes = _lookalike_classes()
    return "".join(classes.get(ch, ch) for ch in text)


@functools.cache
def _lookalike_classes() -> dict[str, str]:
    """Fold the confusables pairs into classes (union-find), once per process.

    Each character maps to the smallest code point of its class, so the result is
    the same whichever lookalike a person typed.
    """
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        root = ch
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(ch, ch) != root:  # path compression
            parent[ch], ch = root, parent[ch]
        return root

    for source, targets in confusables.confusables_data.items():
        if len(source) != 1:
            continue
        for target in targets:
            if len(target["c"]) == 1:
                a, b = find(source), find(target["c"])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {ch: find(ch) for ch in parent}
