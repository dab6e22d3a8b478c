"""The run table's columns as integer level codes, each factorized once per analysis.

Factorizing a text column (hashing every run's string) is the main cost of the statistics at campaign
scale, and the same columns are grouped by several of them (descriptors, config keys, factor shares).
`Levels(table)` factorizes a column over all runs the first time it is asked for; a part of the table
(rows of it, told by index label) takes its slice and renumbers it, an integer pass. Codes the loader
numbered while reading (`load.RunTable.codes`) are taken instead of hashing the column: renumbered,
also an integer pass.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


class Levels:
    """Level codes of `table`'s columns, as `pd.factorize(part[col], use_na_sentinel=False)[0]` numbers them:
    0..k-1 in order of appearance in the part, missing values one level of their own."""

    def __init__(self, table: pd.DataFrame, known: Mapping[str, np.ndarray] | None = None):
        """`known`: integer codes of some of `table`'s columns, row for row, equal exactly where the values are."""
        self._full: dict[str, np.ndarray] = {}
        self._known: dict[str, np.ndarray] = {}  # (filled after the setter: it filters what it finds here)
        self._rows: tuple[pd.Index, np.ndarray | None] | None = None  # the last part's rows in the table
        self.table = table
        self._known = {c: v for c, v in (known or {}).items() if c in table.columns and len(v) == len(table)}

    @property
    def table(self) -> pd.DataFrame:
        return self._table

    @table.setter
    def table(self, table: pd.DataFrame) -> None:
        """The same rows with columns added (a keyed table): the codes of the columns it shares stay."""
        if self._full or self._known:
            same_rows = table.index.equals(self._table.index)
            kept = lambda c: same_rows and c in table.columns and _same(table[c], self._table[c])  # noqa: E731
            self._full = {c: v for c, v in self._full.items() if kept(c)}
            self._known = {c: v for c, v in self._known.items() if kept(c)}
        self._table = table
        self._unique = table.index.is_unique

    def codes(self, part: pd.DataFrame, col: str) -> np.ndarray:
        if not self._unique or col not in self._table.columns:
            return pd.factorize(part[col], use_na_sentinel=False)[0]
        full = self._full.get(col)
        if full is None:
            known = self._known.pop(col, None)
            full = self._full[col] = pd.factorize(known)[0] if known is not None else \
                pd.factorize(self._table[col], use_na_sentinel=False)[0]
        if self._rows is None or self._rows[0] is not part.index:  # (a part is asked for many columns)
            idx = self._table.index
            self._rows = (part.index, None if part.index.equals(idx) else idx.get_indexer(part.index))
        pos = self._rows[1]
        if pos is None:  # all the table's rows, in its order
            return full
        if len(pos) and pos.min() < 0:  # rows that are not the table's
            return pd.factorize(part[col], use_na_sentinel=False)[0]
        return pd.factorize(full[pos])[0]


def _same(a: pd.Series, b: pd.Series) -> bool:
    """The same column data (not a copy with other values: a column set anew is another array)."""
    x, y = a.to_numpy(), b.to_numpy()
    return x.dtype == y.dtype and x.shape == y.shape and \
        x.__array_interface__["data"][0] == y.__array_interface__["data"][0]


def codes_of(levels: Levels | None, part: pd.DataFrame, col: str) -> np.ndarray:
    """`levels.codes(part, col)`, or the plain factorization where the caller has no `Levels`."""
    return levels.codes(part, col) if levels is not None else pd.factorize(part[col], use_na_sentinel=False)[0]


def joint_codes(codes: list[np.ndarray]) -> np.ndarray:
    """One code per distinct combination of the columns' codes (refactorized column by column: no overflow)."""
    j = np.zeros(len(codes[0]) if codes else 0, dtype=np.int64)
    for c in codes:
        j = pd.factorize(j * (int(c.max(initial=0)) + 1) + c)[0]
    return j
