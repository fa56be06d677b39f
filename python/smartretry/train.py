"""Train the ML tier's models from attempt history.

    python -m smartretry.train --history attempts.jsonl --out models/
    smartretry train --history attempts.jsonl --out models/      (the same, from the CLI)

Reads attempt history — JSON lines in the API's ``Attempt`` shape (what
``smartretry simulate --export`` writes), or a SQLite store (its ``outcomes`` table, or
an ``attempts`` table with the ``Attempt`` field names as columns) — and turns each
retry into a training row: the failure it retried, the delay waited and whether it
succeeded. The rows are built by the engine's own feature code (``smartretry._native``),
so the model sees at serving time exactly what it saw in training.

Two models are trained, a logistic regression and gradient boosting (scikit-learn).
Attempts are split by job (no job in both sets) into a training part and a hold-out;
k-fold cross-validation runs on the training part; the hold-out scores the exported
model: accuracy, F1, ROC AUC, Brier score and calibration (reliability bands and the
expected calibration error). Each model is exported to ONNX (skl2onnx) with its sidecar
JSON, ready for ``Engine.register_model``.

Needs the ``ml`` extra: ``pip install 'smartretry[ml]'`` (scikit-learn, skl2onnx, numpy).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _native

__all__ = ["DEFAULT_FEATURES", "TrainError", "load_history", "train", "main"]

#: The feature list used unless one is given (see docs/ml.md for every name).
DEFAULT_FEATURES: List[Dict[str, Any]] = [
    {"name": "attempt_number"},
    {"name": "since_first_failure_ms", "transform": "log1p"},
    {"name": "since_last_failure_ms", "transform": "log1p"},
    {"name": "candidate_delay_ms", "transform": "log1p"},
    {"name": "retry_elapsed_ms", "transform": "log1p"},
    {"name": "time_of_day"},
    {"name": "job_type", "encoding": "hash", "buckets": 16},
    {"name": "error_class", "encoding": "hash", "buckets": 16},
    {"name": "tenant", "encoding": "hash", "buckets": 8},
]

#: The engine's default candidate delays (ml::DEFAULT_CANDIDATES_MS); the sidecar keeps
#: those inside the range of delays the history shows.
CANDIDATE_DELAYS_MS = [
    250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000,
    60_000, 120_000, 300_000, 600_000,
]
ENCODING = "smartretry-features/1"


class TrainError(ValueError):
    """The history or the options cannot produce a model (the message says why)."""


def load_history(path: Path) -> str:
    """The attempt history at ``path`` as JSON lines (read from a SQLite file if it is one)."""
    with open(path, "rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    if not is_sqlite:
        return path.read_text(encoding="utf-8")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        lines = []
        if "outcomes" in tables:
            query = (
                "SELECT job_id, job_type, error_class, tenant, attempt_number, delay_ms, "
                "clock_ms, success, at_ms FROM outcomes ORDER BY at_ms, id"
            )
            for r in con.execute(query):
                attempt = {
                    "job_id": r["job_id"], "job_type": r["job_type"], "error_class": r["error_class"],
                    "attempt_number": r["attempt_number"], "delay_ms": r["delay_ms"],
                    "since_first_failure_ms": r["clock_ms"], "success": bool(r["success"]),
                    "now_ms": r["at_ms"],
                }
                if r["tenant"] is not None:
                    attempt["tenant"] = r["tenant"]
                lines.append(json.dumps(attempt))
        elif "attempts" in tables:
            for r in con.execute("SELECT * FROM attempts"):
                row = {k: r[k] for k in r.keys() if r[k] is not None}
                row["success"] = bool(row.get("success"))
                lines.append(json.dumps(row))
        else:
            raise TrainError(f"{path}: a SQLite file without an outcomes or attempts table")
        return "\n".join(lines)
    finally:
        con.close()


@dataclass
class _Split:
    x_train: Any
    y_train: Any
    groups_train: Any
    x_test: Any
    y_test: Any


def _columns(features: Sequence[Dict[str, Any]]) -> List[str]:
    """The feature each matrix column belongs to (a categorical spans its buckets)."""
    out: List[str] = []
    for f in features:
        out.extend([f["name"]] * int(f.get("buckets", 1) if f.get("encoding") == "hash" else 1))
    return out


def _scores(y: Any, p: Any) -> Dict[str, float]:
    import numpy as np
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score  # type: ignore[import-untyped]

    predicted = (p >= 0.5).astype(int)
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "auc": auc,
        "brier": float(brier_score_loss(y, p)),
    }


def calibration(y: Any, p: Any, bands: int = 10) -> Tuple[List[Dict[str, float]], float]:
    """Reliability per probability band, and the expected calibration error."""
    import numpy as np

    out: List[Dict[str, float]] = []
    ece = 0.0
    for i in range(bands):
        lo, hi = i / bands, (i + 1) / bands
        mask = (p >= lo) & ((p < hi) if i < bands - 1 else (p <= hi))
        n = int(mask.sum())
        if n == 0:
            continue
        predicted, observed = float(p[mask].mean()), float(np.asarray(y)[mask].mean())
        out.append({"lo": lo, "hi": hi, "predicted": predicted, "observed": observed, "count": n})
        ece += n / len(p) * abs(observed - predicted)
    return out, float(ece)


def _estimators(seed: int, learning_rate: float = 0.1, regularization: float = 1.0) -> Dict[str, Any]:
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    return {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2_000, C=1.0 / regularization)
        ),
        # Depth 5: recovery depends on job type × timing interactions (one downstream
        # recovers in 2 s, another in 20 s); depth-3 trees under-fit them (docs/ml.md).
        "gradient_boosting": GradientBoostingClassifier(
            n_estimators=150, max_depth=5, learning_rate=learning_rate, random_state=seed
        ),
    }


def _importance(model: Any, columns: List[str], x: Any) -> Dict[str, float]:
    """Per feature: |coefficient| on standardized inputs (logistic), or the trees'
    impurity importance (boosting), summed over a categorical's buckets."""
    import numpy as np

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "coef_"):
        weights = np.abs(final.coef_[0])
    else:
        weights = np.asarray(final.feature_importances_)
    out: Dict[str, float] = {}
    for name, w in zip(columns, weights):
        out[name] = out.get(name, 0.0) + float(w)
    total = sum(out.values()) or 1.0
    return {k: round(v / total, 4) for k, v in out.items()}


def _folded(model: Any) -> Any:
    """A StandardScaler + LogisticRegression pipeline as one LogisticRegression on the raw
    inputs (w / σ, b − Σ w·μ / σ): the same probabilities, exported as a single
    `LinearClassifier` node that both of the engine's backends run (tract-onnx has no
    `Scaler` operator). Anything else is returned as it is."""
    import numpy as np
    from sklearn.base import clone  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in getattr(model, "steps", [])]
    if len(steps) != 2 or not isinstance(steps[0], StandardScaler) or not isinstance(steps[1], LogisticRegression):
        return model
    scaler, lr = steps
    width = lr.coef_.shape[1]
    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(width)
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(width)
    folded = clone(lr)
    folded.coef_ = lr.coef_ / scale
    folded.intercept_ = lr.intercept_ - (lr.coef_ * mean / scale).sum(axis=1)
    folded.classes_ = lr.classes_
    folded.n_features_in_ = width
    return folded


def _to_onnx(model: Any, x: Any) -> bytes:
    from skl2onnx import to_onnx  # type: ignore[import-untyped]
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    model = _folded(model)
    no_zipmap = {LogisticRegression: {"zipmap": False}, GradientBoostingClassifier: {"zipmap": False}}
    onx = to_onnx(model, x[:1], options=no_zipmap, target_opset={"": 17, "ai.onnx.ml": 3})
    # Name the batch dimension: pure-Rust runtimes need it, and it documents the contract.
    for value in [*onx.graph.input, *onx.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"
    return bytes(onx.SerializeToString())


def train(
    history: Path,
    out: Path,
    *,
    name: str = "retry-success",
    version: Optional[str] = None,
    features: Optional[List[Dict[str, Any]]] = None,
    folds: int = 5,
    holdout: float = 0.2,
    seed: int = 7,
    learning_rate: float = 0.1,
    regularization: float = 1.0,
) -> Dict[str, Any]:
    """Train both models on ``history``, write ``<out>/<version>-<kind>.onnx`` + ``.json``,
    and return the report (one entry per model, with its cross-validation and hold-out
    metrics and the files written)."""
    try:
        import numpy as np
        from sklearn.model_selection import GroupKFold, GroupShuffleSplit  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise TrainError(f"the trainer needs the ml extra (pip install 'smartretry[ml]'): {e}") from e

    if folds < 2:
        raise TrainError(f"folds: must be at least 2, got {folds}")
    if not 0.05 <= holdout <= 0.5:
        raise TrainError(f"holdout: must be 0.05–0.5, got {holdout}")
    if not 0.0 < learning_rate <= 1.0:
        raise TrainError(f"learning_rate: must be in (0, 1], got {learning_rate}")
    if not regularization > 0.0:
        raise TrainError(f"regularization: must be > 0, got {regularization}")
    features = features or DEFAULT_FEATURES
    text = load_history(history)
    raw, n, width, labels, job_ids, delays = _native.ml_training_matrix(text, json.dumps(features))
    if n < 50:
        raise TrainError(f"{history}: {n} retries in the history; at least 50 are needed to train")
    x = np.frombuffer(raw, dtype=np.float32).reshape(n, width)
    y = np.frombuffer(labels, dtype=np.uint8).astype(int)
    groups = np.asarray(job_ids)
    if len(np.unique(y)) < 2:
        raise TrainError(f"{history}: every retry {'succeeded' if y[0] else 'failed'}; nothing to learn")

    train_idx, test_idx = next(GroupShuffleSplit(n_splits=1, test_size=holdout, random_state=seed).split(x, y, groups))
    split = _Split(x[train_idx], y[train_idx], groups[train_idx], x[test_idx], y[test_idx])
    columns = _columns(features)
    seen = [d for d in delays if d > 0]
    lo, hi = (min(seen), max(seen) * 1.5) if seen else (0, float("inf"))
    candidates = [d for d in CANDIDATE_DELAYS_MS if lo * 0.5 <= d <= hi] or CANDIDATE_DELAYS_MS
    version = version or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    report: Dict[str, Any] = {"history": str(history), "rows": n, "positives": int(y.sum()), "models": []}

    k = min(folds, len(np.unique(split.groups_train)))
    for kind, estimator in _estimators(seed, learning_rate, regularization).items():
        cv: Dict[str, List[float]] = {}
        for fit_idx, val_idx in GroupKFold(n_splits=k).split(split.x_train, split.y_train, split.groups_train):
            if len(np.unique(split.y_train[fit_idx])) < 2:
                continue
            fold = _estimators(seed, learning_rate, regularization)[kind].fit(split.x_train[fit_idx], split.y_train[fit_idx])
            for metric, v in _scores(split.y_train[val_idx], fold.predict_proba(split.x_train[val_idx])[:, 1]).items():
                cv.setdefault(metric, []).append(v)
        model = estimator.fit(split.x_train, split.y_train)
        p = model.predict_proba(split.x_test)[:, 1]
        held = _scores(split.y_test, p)
        bands, ece = calibration(split.y_test, p)
        cv_summary = {
            f"cv_{m}_{stat}": round(float(f(v)), 4)
            for m, v in cv.items()
            for stat, f in (("mean", np.nanmean), ("std", np.nanstd))
        }
        metrics = {
            **{m: round(v, 4) for m, v in held.items()},
            "calibration_error": round(ece, 4),
            "samples": int(len(split.y_train)),
            "holdout_samples": int(len(split.y_test)),
            "cv_folds": k,
            **cv_summary,
        }
        short = "lr" if kind == "logistic_regression" else "gb"
        sidecar = {
            "name": name,
            "version": f"{version}-{short}",
            "model_type": kind,
            "encoding": ENCODING,
            "features": features,
            "output": "probabilities",
            "candidate_delays_ms": candidates,
            "metrics": metrics,
            "calibration": bands,
            "feature_importance": _importance(model, columns, split.x_train),
            "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "training": {"history": str(history), "rows": n, "seed": seed, "holdout": holdout},
        }
        stem = out / f"{name}-{version}-{short}"
        model_path, sidecar_path = stem.with_suffix(".onnx"), stem.with_suffix(".json")
        model_path.write_bytes(_to_onnx(model, split.x_train))
        sidecar_path.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        report["models"].append(
            {"version": sidecar["version"], "model_type": kind, "metrics": metrics,
             "model": str(model_path), "sidecar": str(sidecar_path)}
        )
    return report


def _table(report: Dict[str, Any]) -> str:
    rows = [f"{report['rows']} retries ({report['positives']} succeeded) from {report['history']}", ""]
    head = f"{'model':<22}{'accuracy':>9}{'F1':>7}{'AUC':>7}{'Brier':>7}{'ECE':>7}{'CV AUC':>14}"
    rows.append(head)
    for m in report["models"]:
        x = m["metrics"]
        cv = f"{x.get('cv_auc_mean', float('nan')):.3f}±{x.get('cv_auc_std', float('nan')):.3f}"
        rows.append(
            f"{m['model_type']:<22}{x['accuracy']:>9.3f}{x['f1']:>7.3f}{x['auc']:>7.3f}"
            f"{x['brier']:>7.3f}{x['calibration_error']:>7.3f}{cv:>14}"
        )
    rows.append("")
    rows.extend(f"{m['version']}: {m['model']} (+ {Path(m['sidecar']).name})" for m in report["models"])
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartretry.train",
        description="Train the ML tier's models (logistic regression, gradient boosting) from attempt history.",
    )
    parser.add_argument("--history", required=True, type=Path, help="JSON lines (simulate --export) or a SQLite store")
    parser.add_argument("--out", required=True, type=Path, help="directory for the .onnx models and sidecars")
    parser.add_argument("--name", default="retry-success")
    parser.add_argument("--version", default=None, help="version prefix (default: the UTC time)")
    parser.add_argument("--features", type=Path, default=None, help="a JSON feature list (default: DEFAULT_FEATURES)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--learning-rate", type=float, default=0.1, help="gradient boosting's shrinkage (0-1]")
    parser.add_argument(
        "--regularization", type=float, default=1.0, help="logistic regression's L2 strength (1/C, > 0)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        features = json.loads(args.features.read_text()) if args.features else None
        report = train(
            args.history, args.out, name=args.name, version=args.version, features=features,
            folds=args.folds, holdout=args.holdout, seed=args.seed,
            learning_rate=args.learning_rate, regularization=args.regularization,
        )
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
