//! Checks on row-major feature buffers.

use crate::error::RiskError;

/// Returns the number of rows in a non-empty buffer of `n_features` values per row.
pub(crate) fn count_rows(rows: &[f64], n_features: usize) -> Result<usize, RiskError> {
    if n_features == 0 {
        return Err(RiskError::NoFeatures);
    }
    if !rows.len().is_multiple_of(n_features) {
        return Err(RiskError::RaggedRows {
            values: rows.len(),
            features: n_features,
        });
    }
    if rows.is_empty() {
        return Err(RiskError::NoRows);
    }
    Ok(rows.len() / n_features)
}

/// Rejects the first NaN or infinite value, naming its row and feature.
pub(crate) fn check_finite(rows: &[f64], n_features: usize) -> Result<(), RiskError> {
    match rows.iter().position(|value| !value.is_finite()) {
        None => Ok(()),
        Some(at) => Err(RiskError::NonFinite {
            row: at / n_features,
            feature: at % n_features,
            value: rows[at],
        }),
    }
}
