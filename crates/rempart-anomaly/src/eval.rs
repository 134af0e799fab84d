//! ROC-AUC and average precision of scores against labels, ties handled by threshold (as
//! scikit-learn computes them).

/// `(score, is_anomaly)` pairs sorted by score, highest first; groups of equal scores are one
/// threshold.
fn thresholds(scored: &mut [(f32, bool)]) -> Vec<(u64, u64)> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut i = 0;
    while i < scored.len() {
        let s = scored[i].0;
        while i < scored.len() && scored[i].0.total_cmp(&s).is_eq() {
            if scored[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((tp, fp));
    }
    out
}

/// The area under the ROC curve; `None` when one class is absent.
pub fn roc_auc(scored: &mut [(f32, bool)]) -> Option<f64> {
    let curve = thresholds(scored);
    let &(p, n) = curve.last()?;
    if p == 0 || n == 0 {
        return None;
    }
    let (mut area, mut prev_tp, mut prev_fp) = (0.0f64, 0u64, 0u64);
    for &(tp, fp) in &curve {
        area += (fp - prev_fp) as f64 * (tp + prev_tp) as f64 / 2.0;
        prev_tp = tp;
        prev_fp = fp;
    }
    Some(area / (p as f64 * n as f64))
}

/// Average precision: the precision at each threshold weighted by the recall it adds.
pub fn average_precision(scored: &mut [(f32, bool)]) -> Option<f64> {
    let curve = thresholds(scored);
    let &(p, _) = curve.last()?;
    if p == 0 {
        return None;
    }
    let (mut ap, mut prev_tp) = (0.0f64, 0u64);
    for &(tp, fp) in &curve {
        ap += (tp - prev_tp) as f64 / p as f64 * (tp as f64 / (tp + fp) as f64);
        prev_tp = tp;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_values() {
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75,
        // average_precision_score(...) = 0.8333…
        let mut s = vec![(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        assert!((roc_auc(&mut s).unwrap_or(0.0) - 0.75).abs() < 1e-12);
        assert!((average_precision(&mut s).unwrap_or(0.0) - 0.833_333_333_333_333_4).abs() < 1e-9);
        // Ties count half.
        let mut t = vec![(1.0, true), (1.0, false)];
        assert_eq!(roc_auc(&mut t), Some(0.5));
        assert_eq!(roc_auc(&mut [(1.0, true)]), None);
    }
}
