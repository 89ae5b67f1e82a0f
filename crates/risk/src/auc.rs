//! Area under the ROC curve.

use crate::error::RiskError;

/// Returns the area under the ROC curve of `scores` (higher means more anomalous) against
/// `labels` (true for an anomaly).
///
/// It is the Mann–Whitney U statistic over the number of (anomaly, normal) pairs, with
/// tied scores given their average rank, so a tie counts as half a correct ordering: the
/// same figure as scikit-learn's `roc_auc_score`. Fails on unequal lengths, a single class
/// or a NaN score.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, RiskError> {
    if scores.len() != labels.len() {
        return Err(RiskError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if let Some(index) = scores.iter().position(|score| score.is_nan()) {
        return Err(RiskError::NanScore { index });
    }
    let positives = labels.iter().filter(|&&label| label).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(RiskError::SingleClass {
            positives,
            negatives,
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let tied = order[start..]
            .iter()
            .take_while(|&&i| scores[i] == scores[order[start]]);
        let end = start + tied.count();
        // Ranks start + 1 ..= end share their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        positive_rank_sum += rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_reversed_orderings() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels).unwrap(), 0.0);
    }

    #[test]
    fn ties_count_half() {
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75.
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &labels).unwrap(), 0.75);
        // All scores tied: no ordering information.
        assert_eq!(roc_auc(&[0.5; 4], &labels).unwrap(), 0.5);
        // roc_auc_score([0, 1, 0, 1, 0], [0.2, 0.5, 0.5, 0.9, 0.1]) == 5.5 / 6.
        let labels = [false, true, false, true, false];
        let auc = roc_auc(&[0.2, 0.5, 0.5, 0.9, 0.1], &labels).unwrap();
        assert!((auc - 5.5 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn rejects_unusable_input() {
        assert!(matches!(
            roc_auc(&[0.1, 0.2], &[true]),
            Err(RiskError::LengthMismatch {
                scores: 2,
                labels: 1
            })
        ));
        assert!(matches!(
            roc_auc(&[0.1, 0.2], &[true, true]),
            Err(RiskError::SingleClass {
                positives: 2,
                negatives: 0
            })
        ));
        assert!(matches!(
            roc_auc(&[0.1, f64::NAN], &[true, false]),
            Err(RiskError::NanScore { index: 1 })
        ));
    }
}
