//! The seam every inference backend implements: it reports a model's inputs and outputs
//! as [`Port`]s, which [`check_contract`] checks once for all backends, and runs rows
//! ([`Infer`]).

use crate::error::{Error, Result};

/// One input or output as a backend reports it.
pub(crate) struct Port {
    pub name: String,
    pub float: bool,
    /// `None`: rank unknown; a `None` dimension is symbolic (`"N"`).
    pub dims: Option<Vec<Option<usize>>>,
    /// How the backend describes its type, for errors.
    pub kind: String,
}

/// What a loaded model runs: `n` rows of `width` floats in, the chosen output's values out
/// (into `out`, cleared first); returns the output's number of columns.
pub(crate) trait Infer: Send + Sync {
    fn run(&self, rows: &[f32], n: usize, out: &mut Vec<f32>) -> Result<usize>;
}

/// Why a backend did not give a scorer.
pub(crate) enum LoadError {
    /// It cannot load this model (or cannot run at all): another backend may.
    Unloadable(String),
    /// It loaded the model and the model breaks the contract: final.
    Refused(Error),
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Refused(e)
    }
}

/// Check a model's inputs and outputs against the contract; returns the index of the
/// probability output (named `wanted`, else `probabilities`, else the last) and its
/// declared number of columns (`None`: symbolic). `what` names the model in errors.
pub(crate) fn check_contract(
    inputs: &[Port],
    outputs: &[Port],
    width: usize,
    wanted: Option<&str>,
    what: &str,
) -> Result<(usize, Option<usize>)> {
    let model_err = |m: String| Error::Model(format!("{what}: {m}"));
    let [input] = inputs else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(model_err(format!(
            "has {} inputs ({}); the contract is one float input [N, {width}]",
            names.len(),
            names.join(", ")
        )));
    };
    match &input.dims {
        Some(dims) if input.float && dims.len() == 2 => {
            if let Some(columns) = dims[1].filter(|&c| c != width) {
                return Err(model_err(format!(
                    "input {:?} has {columns} columns, but the sidecar's features make {width}",
                    input.name
                )));
            }
        }
        _ => {
            return Err(model_err(format!(
                "input {:?} is {}; the contract is a float tensor [N, {width}]",
                input.name, input.kind
            )))
        }
    }
    let chosen = match wanted {
        Some(name) => outputs.iter().position(|o| o.name == name).ok_or_else(|| {
            let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
            model_err(format!("has no output {name:?} (outputs: {})", names.join(", ")))
        })?,
        None => outputs
            .iter()
            .position(|o| o.name == "probabilities")
            .or(outputs.len().checked_sub(1))
            .ok_or_else(|| model_err("has no outputs".into()))?,
    };
    let output = &outputs[chosen];
    match &output.dims {
        Some(dims) if output.float && dims.len() == 2 && matches!(dims[1], None | Some(1 | 2)) => {
            Ok((chosen, dims[1]))
        }
        _ => Err(model_err(format!(
            "output {:?} is {}; the contract is float probabilities [N, 2] or [N, 1] \
             (export scikit-learn models with zipmap disabled)",
            output.name, output.kind
        ))),
    }
}

/// What opening a model with a backend gives: the model and its output's columns.
pub(crate) type Opened = std::result::Result<(Box<dyn Infer>, Option<usize>), LoadError>;
