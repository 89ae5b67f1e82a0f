//! Server-rendered HTML pages (maud templates, no client build).

pub mod attention;
pub mod decisions;
pub mod layout;
pub mod login;
pub mod overview;
pub mod transactions;
