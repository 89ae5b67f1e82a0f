use std::path::PathBuf;

/// Errors of the risk engine: invalid input, invalid parameters, unreadable data sets and
/// stored models that fail validation.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    /// The input holds no rows.
    #[error("the input holds no rows")]
    NoRows,
    /// The input declares zero features per row.
    #[error("rows must have at least one feature")]
    NoFeatures,
    /// Fitting needs at least two rows: one row cannot be isolated from anything.
    #[error("fitting needs at least 2 rows, got {rows}")]
    TooFewRows {
        /// Rows given.
        rows: usize,
    },
    /// A row-major buffer whose length is not a multiple of the feature count.
    #[error("{values} values do not divide into rows of {features} features")]
    RaggedRows {
        /// Length of the buffer.
        values: usize,
        /// Features per row.
        features: usize,
    },
    /// A row whose width differs from the model's feature count.
    #[error("expected {expected} features per row, got {found}")]
    FeatureCount {
        /// Features the model was fitted on.
        expected: usize,
        /// Features in the row.
        found: usize,
    },
    /// A NaN or infinite value; the forest splits on order, which such values do not have.
    #[error("row {row}, feature {feature}: value {value} is not a finite number")]
    NonFinite {
        /// Zero-based row index.
        row: usize,
        /// Zero-based feature index.
        feature: usize,
        /// The offending value.
        value: f64,
    },
    /// A forest parameter out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Scores and labels of different lengths.
    #[error("{scores} scores but {labels} labels")]
    LengthMismatch {
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },
    /// ROC-AUC is undefined without both anomalies and normal rows.
    #[error("ROC-AUC needs both classes: {positives} anomalies, {negatives} normal rows")]
    SingleClass {
        /// Rows labelled anomalous.
        positives: usize,
        /// Rows labelled normal.
        negatives: usize,
    },
    /// A NaN score, which has no rank.
    #[error("score {index} is NaN")]
    NanScore {
        /// Index of the score.
        index: usize,
    },
    /// Evaluation needs labels and the data set has none.
    #[error("the data set has no `label` column")]
    MissingLabels,
    /// A data set file that cannot be opened.
    #[error("cannot open {path}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Malformed CSV: unreadable bytes, or rows of unequal length.
    #[error("malformed CSV")]
    Csv(#[from] csv::Error),
    /// A CSV cell that does not hold a usable number.
    #[error("line {line}, column {column}: {value:?} {reason}")]
    CsvValue {
        /// One-based line number in the file.
        line: u64,
        /// Column name from the header.
        column: String,
        /// The cell as read.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A stored model that is internally inconsistent (corrupt or from another version).
    #[error("invalid stored model: {0}")]
    InvalidModel(String),
}
