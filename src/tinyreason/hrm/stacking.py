"""Stacked ensemble of HRM checkpoints: a logistic-regression meta-learner over member outputs.

For every labelled token position and every candidate token c, the features are, per
member i: p_i(c), log p_i(c) and sigmoid(q_halt_i) * p_i(c) (the member's probability,
its log, and the probability weighted by the member's own belief that its whole answer is
right). A binary logistic regression (scikit-learn) learns "c is the label" on a held-out
split; the ensemble answers argmax_c of its score. Saved as plain JSON (coefficients,
feature names, member list) — never pickle — so it can be inspected and reused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyreason.errors import UserError
from tinyreason.fileio import atomic_write_json, read_json
from tinyreason.hrm.losses import IGNORE_LABEL_ID

FORMAT = "tinyreason-hrm-stacker/1"
EPS = 1e-6


def feature_names(n_members: int) -> list[str]:
    return [f"m{i}_{f}" for i in range(n_members) for f in ("p", "logp", "q_p")]


def features(probs: list[np.ndarray], q_halt: list[np.ndarray]) -> np.ndarray:
    """(N, L, V, 3 * members) features. probs[i] (N, L, V) member probabilities; q_halt[i] (N,)."""
    cols = []
    for p, q in zip(probs, q_halt):
        p = np.asarray(p, dtype=np.float32)
        conf = (1.0 / (1.0 + np.exp(-np.asarray(q, dtype=np.float64)))).astype(np.float32)[:, None, None]  # (N, 1, 1)
        cols += [p, np.log(np.clip(p, EPS, 1.0)), p * conf]
    return np.stack(cols, axis=-1)


class Stacker:
    """Linear score over `features`; fit with scikit-learn, stored as JSON."""

    def __init__(self, coef: np.ndarray, intercept: float, meta: dict | None = None):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.meta = dict(meta or {})

    @property
    def n_members(self) -> int:
        return len(self.coef) // 3

    def scores(self, probs: list[np.ndarray], q_halt: list[np.ndarray]) -> np.ndarray:
        """(N, L, V) logit that each token is the label."""
        if len(probs) != self.n_members:
            raise UserError(f"stacker was fitted on {self.n_members} checkpoints, got {len(probs)}")
        return features(probs, q_halt).astype(np.float64) @ self.coef + self.intercept

    def probs(self, probs: list[np.ndarray], q_halt: list[np.ndarray]) -> np.ndarray:
        """(N, L, V) per-token distribution: sigmoid scores normalised over the vocabulary."""
        s = 1.0 / (1.0 + np.exp(-self.scores(probs, q_halt)))
        return s / np.clip(s.sum(-1, keepdims=True), 1e-12, None)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, {
            "format": FORMAT, "features": feature_names(self.n_members), "coef": self.coef.tolist(),
            "intercept": self.intercept, **self.meta,
        })

    @classmethod
    def load(cls, path: str | Path) -> Stacker:
        path = Path(path)
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{path}: not a stacker file (format {FORMAT})")
        missing = [k for k in ("features", "coef", "intercept") if k not in data]
        if missing:
            raise UserError(f"{path}: stacker file has no '{missing[0]}'")
        meta = {k: v for k, v in data.items() if k not in ("format", "features", "coef", "intercept")}
        coef = np.asarray(data["coef"], dtype=np.float64)
        if coef.ndim != 1 or len(coef) % 3 or len(coef) != len(data["features"]):
            raise UserError(f"{path}: coefficient list does not match its feature list")
        return cls(coef, data["intercept"], meta)


def fit_stacker(
    probs: list[np.ndarray], q_halt: list[np.ndarray], labels: np.ndarray, max_rows: int = 200_000, seed: int = 0,
    meta: dict | None = None,
) -> Stacker:
    """Fit on held-out member outputs. labels (N, L) with -100 ignored. Positions are
    subsampled so that positions x vocabulary <= max_rows."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    n, length = labels.shape
    vocab = probs[0].shape[-1]
    pos = np.flatnonzero(labels.reshape(-1) != IGNORE_LABEL_ID)
    if pos.size == 0:
        raise UserError("cannot fit a stacker: the held-out split has no labelled tokens")
    keep = max(1, max_rows // vocab)
    if pos.size > keep:
        pos = np.sort(np.random.default_rng(seed).choice(pos, keep, replace=False))
    rows, cols = np.divmod(pos, length)
    x = features([p[rows, cols][:, None] for p in probs], [q[rows] for q in q_halt])[:, 0]  # (P, V, F)
    y = (np.arange(vocab)[None, :] == labels[rows, cols][:, None])  # (P, V)
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1)
    if y.all() or not y.any():
        raise UserError("cannot fit a stacker: the held-out labels have a single class")
    lr = LogisticRegression(C=1.0, max_iter=1000)
    lr.fit(x, y)
    info = {"fit_positions": int(len(rows)), "fit_rows": int(len(y)), "fit_row_accuracy": float(lr.score(x, y))}
    return Stacker(lr.coef_[0], float(lr.intercept_[0]), {**(meta or {}), **info})
