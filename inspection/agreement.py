"""Chance-corrected agreement between reviewers (pure maths, no database).

Raw agreement ("the two gave the same verdict on 90 % of the calls") flatters reviewers when
one verdict dominates: if 90 % of calls pass, two reviewers who pass everything agree 90 % of
the time without looking. Kappa subtracts the agreement expected by chance from the reviewers'
own category rates: 1 is perfect, 0 is chance, below 0 worse than chance.

* :func:`cohen_kappa` — two reviewers rating the same calls (Cohen 1960).
* :func:`fleiss_kappa` — any number of ratings per call, the same number for every call
  (Fleiss 1971); for two raters it differs slightly from Cohen's because it pools both
  raters' category rates.

Both return ``None`` when kappa is undefined: nothing rated, or every rating in one category
(chance agreement is then 1, and there is nothing left to correct for).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters; ``pairs`` holds (rater A's category, rater B's) per subject."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    rate_a = Counter(a for a, _ in pairs)
    rate_b = Counter(b for _, b in pairs)
    expected = sum(rate_a[c] * rate_b.get(c, 0) for c in rate_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa; ``table[i][j]`` is how many raters put subject ``i`` in category ``j``.
    Every row must sum to the same number of raters (at least two): ValueError otherwise."""
    rows = [list(r) for r in table if sum(r)]
    if not rows:
        return None
    raters = sum(rows[0])
    if raters < 2:
        raise ValueError("fleiss_kappa: each subject needs at least two ratings")
    if any(sum(r) != raters for r in rows) or any(x < 0 for r in rows for x in r):
        raise ValueError("fleiss_kappa: every subject needs the same number of ratings")
    subjects = len(rows)
    total = subjects * raters
    shares = [sum(r[j] for r in rows) / total for j in range(len(rows[0]))]
    per_subject = [(sum(x * x for x in r) - raters) / (raters * (raters - 1)) for r in rows]
    observed = sum(per_subject) / subjects
    expected = sum(p * p for p in shares)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def category_table(ratings: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """Per-subject rating lists (``[["agree", "override", "agree"], ...]``) as the counts table
    :func:`fleiss_kappa` takes, one column per category seen."""
    cats = sorted({c for r in ratings for c in r}, key=str)
    return [[Counter(r)[c] for c in cats] for r in ratings]
