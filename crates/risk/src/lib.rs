//! The risk engine's anomaly detector: an isolation forest over principals' operational
//! metadata, and the tools to judge it against labelled data.
//!
//! - [`IsolationForest`] fits trees on row-major `f64` features and scores rows in (0, 1],
//!   higher meaning more anomalous, exactly as scikit-learn's `IsolationForest` defines it.
//!   It serialises with serde, with a caller-filled [`FeatureSchema`], for the model registry.
//! - [`Dataset`] reads feature tables from CSV, with an optional `label` column.
//! - [`roc_auc`] and [`evaluate`] measure how well the scores rank labelled anomalies.

#![warn(missing_docs)]

mod auc;
mod dataset;
mod error;
mod eval;
mod forest;
mod layout;
mod model;
mod rows;
mod tree;

pub use auc::roc_auc;
pub use dataset::{Dataset, LABEL_COLUMN};
pub use error::RiskError;
pub use eval::{evaluate, EvalReport};
pub use forest::{FeatureSchema, ForestParams, IsolationForest};
pub use model::MODEL_FORMAT;
pub use tree::average_path_length;
