//! Server-rendered HTML pages (maud templates, no client build).

pub mod attention;
pub mod bundles;
pub mod chart;
pub mod decisions;
pub mod layout;
pub mod login;
pub mod overview;
pub mod risk;
pub mod transactions;
