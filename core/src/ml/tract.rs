//! tract-onnx: a pure-Rust ONNX runtime, built into the binary (feature `tract`). It
//! needs no shared library, and runs the `ai.onnx.ml` operators skl2onnx uses for the
//! trainer's models (`LinearClassifier`, `TreeEnsembleClassifier`) but not all of them
//! (no `Scaler`, no `ZipMap`): a model it cannot load goes to the next backend.
//!
//! The model is loaded with its batch dimension symbolic (`"N"`), reduced to the one
//! output the contract reads (skl2onnx's `label` is never computed) and optimized once.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use tract_onnx::prelude::*;

use super::contract::{check_contract, Infer, LoadError, Opened, Port};
use crate::error::{Error, Result};

/// How `ml_status().runtime` names this backend.
pub const DESCRIPTION: &str = "tract-onnx 0.23 (built in)";

/// An optimized plan and the state it runs in (one inference at a time, as with ONNX
/// Runtime; the state keeps its buffers between runs).
struct TractModel {
    state: Mutex<TypedSimpleState>,
    width: usize,
}

/// Load `bytes` and check them against the contract (see [`check_contract`]).
pub(crate) fn open(bytes: &[u8], width: usize, output: Option<&str>, what: &str) -> Opened {
    let unloadable = |e: String| LoadError::Unloadable(format!("{what}: not loadable by tract: {e}"));
    let mut model = guarded(|| {
        let onnx = tract_onnx::onnx();
        let mut proto = onnx.proto_model_for_read(&mut &bytes[..])?;
        one_base_value_for_binary_trees(&mut proto);
        onnx.model_for_proto_model(&proto)?.into_typed()
    })
    .map_err(unloadable)?;
    let port = |outlet: OutletId, model: &TypedModel| -> Port {
        let name = model.outlet_label(outlet).unwrap_or(&model.node(outlet.node).name).to_string();
        match model.outlet_fact(outlet) {
            Ok(fact) => Port {
                name,
                float: fact.datum_type == f32::datum_type(),
                dims: Some(
                    fact.shape
                        .dims()
                        .iter()
                        .map(|d| d.as_i64().and_then(|v| usize::try_from(v).ok()))
                        .collect(),
                ),
                kind: fact.format_dt_shape(),
            },
            Err(e) => Port { name, float: false, dims: None, kind: format!("unknown ({e})") },
        }
    };
    let inputs: Vec<Port> = model.inputs.iter().map(|&o| port(o, &model)).collect();
    let outputs: Vec<Port> = model.outputs.iter().map(|&o| port(o, &model)).collect();
    let (chosen, declared) = check_contract(&inputs, &outputs, width, output, what)?;
    model.outputs = vec![model.outputs[chosen]];
    let state = guarded(|| model.into_optimized()?.into_runnable()?.spawn()).map_err(unloadable)?;
    Ok((Box::new(TractModel { state: Mutex::new(state), width }), declared))
}

impl Infer for TractModel {
    fn run(&self, rows: &[f32], n: usize, out: &mut Vec<f32>) -> Result<usize> {
        let fail = |e: String| Error::Model(format!("inference failed: {e}"));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let outputs =
            guarded(|| state.run(tvec!(Tensor::from_shape(&[n, self.width], rows)?.into()))).map_err(fail)?;
        let value = outputs.first().ok_or_else(|| fail("no output".into()))?;
        let shape = value.shape();
        if shape.first() != Some(&n) {
            return Err(Error::Model(format!("output shape {shape:?} does not match {n} rows")));
        }
        let data =
            value.try_as_plain_ram().and_then(|v| v.as_slice::<f32>()).map_err(|e| fail(format!("{e:#}")))?;
        out.clear();
        out.extend_from_slice(data);
        Ok(if shape.len() == 2 { shape[1] } else { 1 })
    }
}

/// skl2onnx writes a binary gradient boosting model as one score per row (every leaf
/// adds to class 0, `post_transform` LOGISTIC) with a single `base_values` entry, as the
/// ONNX-ML specification allows; tract 0.23 insists on one per class ("attribute
/// 'base_values': expected length 1 (or undefined), got 2"). It scores that layout in
/// column 0 alone and discards column 1, so a second base value of 0 changes nothing but
/// lets it load. Other models are left alone.
fn one_base_value_for_binary_trees(proto: &mut tract_onnx::pb::ModelProto) {
    let Some(graph) = proto.graph.as_mut() else { return };
    for node in graph.node.iter_mut().filter(|n| n.op_type == "TreeEnsembleClassifier") {
        let attr = |name: &str| node.attribute.iter().position(|a| a.name == name);
        let labels = [attr("classlabels_int64s"), attr("classlabels_strings")]
            .into_iter()
            .flatten()
            .map(|i| node.attribute[i].ints.len() + node.attribute[i].strings.len())
            .sum::<usize>();
        let class_zero_only =
            attr("class_ids").is_some_and(|i| node.attribute[i].ints.iter().all(|&c| c == 0));
        if let (2, true, Some(base)) = (labels, class_zero_only, attr("base_values")) {
            if node.attribute[base].floats.len() == 1 {
                node.attribute[base].floats.push(0.0);
            }
        }
    }
}

/// `f`'s result, its error (with causes) or its panic as text: tract asserts on some
/// malformed graphs, and a model must not bring the engine down.
fn guarded<T>(f: impl FnOnce() -> TractResult<T>) -> std::result::Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("tract panicked: {text}"))
        }
    }
}
