"""Test models for the ML tier, made here (never downloaded).

    python tests/ml/make_models.py OUT_DIR

Writes, each with its sidecar (same name, .json):
  recovery.onnx           logistic regression (scikit-learn → skl2onnx) trained on jobs
                          whose downstream recovers ~8 s after the first failure for
                          `timeout` and ~60 s for `service_unavailable`
  recovery_gb.onnx        gradient boosting on the same data (a TreeEnsemble graph)
  recovery_scaled.onnx    StandardScaler + logistic regression, as `smartretry.train`
                          exports it (a Scaler node, which tract-onnx does not implement)
  wrong_width.onnx        a valid model whose input has 5 columns; its sidecar makes 7
  corrupt.onnx            recovery.onnx with its bytes cut in half and scrambled
  fails_at_inference.onnx loads and runs on a trial row, but fails at inference for
                          attempt_number ≥ 2 (a Gather out of range)
Needs numpy, scikit-learn, skl2onnx and onnx (make test installs them in .venv).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BUCKETS = 4
FEATURES = [
    {"name": "attempt_number"},
    {"name": "since_first_failure_ms", "transform": "log1p"},
    {"name": "candidate_delay_ms", "transform": "log1p"},
    {"name": "error_class", "encoding": "hash", "buckets": BUCKETS},
]
WIDTH = 3 + BUCKETS
MEDIAN_RECOVERY_MS = {"timeout": 8_000.0, "service_unavailable": 60_000.0}


def fnv1a(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bucket(value: str, buckets: int) -> int:
    """The engine's categorical column: SplitMix64's finalizer over FNV-1a, mod buckets."""
    z = (fnv1a(value) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) % buckets


def row(attempt: int, since_first: float, delay: float, error_class: str) -> list[float]:
    one_hot = [0.0] * BUCKETS
    one_hot[bucket(error_class, BUCKETS)] = 1.0
    return [float(attempt), math.log1p(since_first), math.log1p(delay), *one_hot]


def dataset(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for _ in range(n):
        error_class = "timeout" if rng.random() < 0.5 else "service_unavailable"
        recovery = MEDIAN_RECOVERY_MS[error_class] * math.exp(rng.normal(0, 0.25))
        attempt = int(rng.integers(1, 5))
        since_first = 0.0 if attempt == 1 else float(rng.uniform(0, recovery))
        delay = float(math.exp(rng.uniform(math.log(100), math.log(600_000))))
        rows.append(row(attempt, since_first, delay, error_class))
        labels.append(since_first + delay >= recovery)
    return np.asarray(rows, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def name_batch_dim(model: onnx.ModelProto) -> onnx.ModelProto:
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"
    return model


def calibration(p: np.ndarray, y: np.ndarray, bands: int = 10) -> tuple[list[dict], float]:
    out, ece = [], 0.0
    for i in range(bands):
        lo, hi = i / bands, (i + 1) / bands
        mask = (p >= lo) & ((p < hi) if i < bands - 1 else (p <= hi))
        if mask.sum() == 0:
            continue
        predicted, observed = float(p[mask].mean()), float(y[mask].mean())
        out.append({"lo": lo, "hi": hi, "predicted": predicted, "observed": observed, "count": int(mask.sum())})
        ece += mask.sum() / len(p) * abs(observed - predicted)
    return out, float(ece)


def sidecar(version: str, model_type: str, extra: dict | None = None, **fields: object) -> dict:
    base = {
        "name": "test-recovery",
        "version": version,
        "model_type": model_type,
        "encoding": "smartretry-features/1",
        "features": FEATURES,
        "output": "probabilities",
        "metrics": {},
    }
    base.update(fields)
    if extra:
        base.update(extra)
    return base


def write(out: Path, stem: str, model: onnx.ModelProto | bytes, meta: dict) -> None:
    data = model if isinstance(model, bytes) else name_batch_dim(model).SerializeToString()
    (out / f"{stem}.onnx").write_bytes(data)
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=2))


def export(
    out: Path, stem: str, model: object, version: str, kind: str, importance: dict,
    x: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
) -> onnx.ModelProto:
    """Write `model` as ONNX (probabilities without zipmap) with its hold-out metrics."""
    p = model.predict_proba(x_test)[:, 1]
    bins, ece = calibration(p, y_test)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    onx = to_onnx(model, x[:1], options={id(final): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    metrics = {"accuracy": float(((p >= 0.5) == y_test).mean()), "calibration_error": ece, "samples": len(x)}
    meta = sidecar(version, kind, metrics=metrics, calibration=bins, feature_importance=importance)
    write(out, stem, onx, meta)
    return onx


def trained(out: Path) -> bytes:
    rng = np.random.default_rng(7)
    x, y = dataset(rng, 6_000)
    x_test, y_test = dataset(rng, 2_000)
    lr = LogisticRegression(max_iter=2_000).fit(x, y)
    importance = {f["name"]: 0.0 for f in FEATURES}
    std = x.std(axis=0)
    for i, w in enumerate(lr.coef_[0]):
        importance[FEATURES[min(i, 3)]["name"]] += abs(float(w) * float(std[i]))
    lr_onnx = export(out, "recovery", lr, "lr-1", "logistic_regression", importance, x, x_test, y_test)
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000)).fit(x, y)
    export(out, "recovery_scaled", scaled, "lr-scaled-1", "logistic_regression", importance, x, x_test, y_test)
    gb = GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=7).fit(x, y)
    importance = dict(zip([f["name"] for f in FEATURES[:3]], map(float, gb.feature_importances_[:3])))
    export(out, "recovery_gb", gb, "gb-1", "gradient_boosting", importance, x, x_test, y_test)
    return name_batch_dim(lr_onnx).SerializeToString()


def logistic_graph(width: int, extra_nodes: list | None = None, gated: bool = False) -> onnx.ModelProto:
    """probabilities[N, 1] = Sigmoid(X · w + b), optionally × a Gather on attempt_number."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [width, 1], [0.0] * 2 + [1.0] + [0.0] * (width - 3))
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [-9.0])
    nodes = [helper.make_node("MatMul", ["X", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"])]
    inits = [w, b]
    if gated:
        inits += [
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("table", TensorProto.FLOAT, [2], [1.0, 1.0]),
        ]
        nodes += [
            helper.make_node("Sigmoid", ["z"], ["s"]),
            helper.make_node("Slice", ["X", "starts", "ends", "axes"], ["attempt"]),
            helper.make_node("Cast", ["attempt"], ["index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "index"], ["gate"], axis=0),
            helper.make_node("Mul", ["s", "gate"], ["probabilities"]),
        ]
    else:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["probabilities"]))
    graph = helper.make_graph(
        nodes + (extra_nodes or []),
        "logistic",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    good = trained(out)
    write(out, "wrong_width", logistic_graph(5), sidecar("wrong-width-1", "logistic_regression"))
    scrambled = bytes(b ^ 0x5A for b in good[: len(good) // 2])
    write(out, "corrupt", scrambled, sidecar("corrupt-1", "logistic_regression"))
    write(out, "fails_at_inference", logistic_graph(WIDTH, gated=True), sidecar("gated-1", "logistic_regression"))
    print(f"test models in {out}")


if __name__ == "__main__":
    main()
