"""The markers of cells that read as empty but are not, as the reader puts them in place.

Plain ``str`` subclasses with nothing else imported: the cell rules (plan/rules.py) tell them
apart from text, and every command reads its options through those rules, so this module
must stay light (no numpy: tests/test_layers.py holds the CLI's start to that).
"""

from __future__ import annotations


class FormulaWithoutValue(str):
    """A cell with a formula but no value saved (the text is the formula)."""

    __slots__ = ()


class ErrorCell(str):
    """An Excel error cell (#N/A, #REF!, …) where the reader saw an empty cell."""

    __slots__ = ()


class MergedCells(str):
    """A cell of a merged range the job cannot read one way: the text says why."""

    __slots__ = ()
