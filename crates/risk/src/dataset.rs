//! Feature tables, read from CSV files such as the labelled anomaly-detection sets.

use std::io::Read;
use std::path::Path;

use crate::error::RiskError;
use crate::rows::{check_finite, count_rows};

/// Name of the optional column holding labels: 1 for an anomaly, 0 for a normal row.
pub const LABEL_COLUMN: &str = "label";

/// A table of feature rows (row-major), with optional anomaly labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    feature_names: Vec<String>,
    values: Vec<f64>,
    labels: Option<Vec<bool>>,
}

impl Dataset {
    /// Builds a data set from row-major `values`, one per feature name per row, and
    /// optional labels (one per row). Fails on an empty, ragged or non-finite table.
    pub fn new(
        feature_names: Vec<String>,
        values: Vec<f64>,
        labels: Option<Vec<bool>>,
    ) -> Result<Self, RiskError> {
        let rows = count_rows(&values, feature_names.len())?;
        check_finite(&values, feature_names.len())?;
        if let Some(labels) = &labels {
            if labels.len() != rows {
                return Err(RiskError::LengthMismatch {
                    scores: rows,
                    labels: labels.len(),
                });
            }
        }
        Ok(Self {
            feature_names,
            values,
            labels,
        })
    }

    /// Reads a CSV file with a header row: every column is a feature except `label`.
    pub fn from_csv_path(path: impl AsRef<Path>) -> Result<Self, RiskError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| RiskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_csv_reader(std::io::BufReader::new(file))
    }

    /// Reads CSV text with a header row: every column is a feature except `label`. A cell
    /// that is not a finite number, or a label other than 0 or 1, fails with its line and
    /// column.
    pub fn from_csv_reader(reader: impl Read) -> Result<Self, RiskError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let header = reader.headers()?.clone();
        let label_at = header.iter().position(|name| name == LABEL_COLUMN);
        let feature_names: Vec<String> = header
            .iter()
            .filter(|&name| name != LABEL_COLUMN)
            .map(String::from)
            .collect();
        let mut values = Vec::new();
        let mut labels = label_at.map(|_| Vec::new());
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record)? {
            let line = record.position().map_or(0, csv::Position::line);
            for (column, cell) in record.iter().enumerate() {
                let name = &header[column];
                match labels.as_mut() {
                    Some(labels) if Some(column) == label_at => {
                        labels.push(parse_label(cell, line, name)?);
                    }
                    _ => values.push(parse_value(cell, line, name)?),
                }
            }
        }
        Self::new(feature_names, values, labels)
    }

    /// Returns the number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / self.feature_names.len()
    }

    /// Returns the number of features per row.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Returns the feature names, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Returns all feature values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Returns the labels (true for an anomaly), if the data set has them.
    pub fn labels(&self) -> Option<&[bool]> {
        self.labels.as_deref()
    }

    /// Returns the number of rows labelled anomalous, if the data set has labels.
    pub fn anomalies(&self) -> Option<usize> {
        self.labels()
            .map(|labels| labels.iter().filter(|&&label| label).count())
    }
}

fn parse_value(cell: &str, line: u64, column: &str) -> Result<f64, RiskError> {
    let bad = |reason| RiskError::CsvValue {
        line,
        column: column.to_owned(),
        value: cell.to_owned(),
        reason,
    };
    let value: f64 = cell.parse().map_err(|_| bad("is not a number"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(bad("is not a finite number"))
    }
}

fn parse_label(cell: &str, line: u64, column: &str) -> Result<bool, RiskError> {
    let value = parse_value(cell, line, column)?;
    if value == 0.0 || value == 1.0 {
        return Ok(value == 1.0);
    }
    Err(RiskError::CsvValue {
        line,
        column: column.to_owned(),
        value: cell.to_owned(),
        reason: "is not a label (0 or 1)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Dataset, RiskError> {
        Dataset::from_csv_reader(text.as_bytes())
    }

    #[test]
    fn reads_features_and_labels() {
        let data = read("f0,f1,label\n1.5,-2,0\n3,4e2,1\n").unwrap();
        assert_eq!(data.feature_names(), ["f0", "f1"]);
        assert_eq!(data.values(), [1.5, -2.0, 3.0, 400.0]);
        assert_eq!(data.labels(), Some(&[false, true][..]));
        assert_eq!(
            (data.rows(), data.n_features(), data.anomalies()),
            (2, 2, Some(1))
        );
    }

    #[test]
    fn labels_are_optional() {
        let data = read("a,b\n1,2\n").unwrap();
        assert_eq!(data.labels(), None);
        assert_eq!(data.anomalies(), None);
    }

    #[test]
    fn a_bad_number_names_line_and_column() {
        let error = read("f0,f1,label\n1,2,0\n3,x7,1\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"line 3, column f1: "x7" is not a number"#
        );
        let error = read("f0,label\nNaN,0\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"line 2, column f0: "NaN" is not a finite number"#
        );
        let error = read("f0,label\n1,2\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"line 2, column label: "2" is not a label (0 or 1)"#
        );
    }

    #[test]
    fn rejects_short_rows_and_empty_files() {
        assert!(matches!(read("f0,f1\n1,2\n3\n"), Err(RiskError::Csv(_))));
        assert!(matches!(read("f0,f1\n"), Err(RiskError::NoRows)));
        assert!(matches!(read("label\n1\n"), Err(RiskError::NoFeatures)));
    }
}
