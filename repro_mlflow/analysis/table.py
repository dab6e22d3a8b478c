"""An earlier analysis's `runs.csv` as a store: told apart from a tracking URI, and read back bit for bit.

Importing this module costs nothing (pandas is imported by `read_table` alone): `repro analyze` asks
`is_table` before anything heavy is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ReproError

if TYPE_CHECKING:
    import pandas as pd

ANALYSIS_COLUMNS = ("environment", "environment_label", "config", "repeat")  # added by `repro analyze` to runs.csv


def is_table(store: str) -> bool:
    """A `runs.csv` exported by `repro analyze` (a .csv file, or a folder holding runs.csv) rather than a URI."""
    p = Path(store)
    return (store.endswith(".csv") and p.is_file()) or (p.is_dir() and (p / "runs.csv").is_file()
                                                       and not (p / "meta.yaml").exists())


def read_table(path: str | Path) -> pd.DataFrame:
    """A `runs.csv` as `repro analyze` wrote it, read back bit for bit (digests stay text, floats exact)."""
    import pandas as pd

    p = Path(path)
    p = p / "runs.csv" if p.is_dir() else p
    try:
        head = pd.read_csv(p, nrows=0).columns
        text = {c: str for c in head if not c.startswith("metrics.")}  # a digest must stay a string
        # floats must read back bit for bit as pandas wrote them: pandas 3 does by default
        exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        # only an empty cell is missing: a tag's text "n/a", "NA" or "null" is a value (pandas reads those as NaN)
        return pd.read_csv(p, dtype=text, low_memory=False, keep_default_na=False, na_values=[""], **exact)
    except (ValueError, OSError) as e:
        raise ReproError(f"{p}: cannot read it as a run table ({e})") from None
