//! Medians and ratios over alternating rounds.

/// The median of `values` (the mean of the two middle values for an even count); `None` when
/// empty or when a value is not a number.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    })
}

/// The median over rounds of `a[i] / b[i]`: each round's ratio is taken within the round, so a
/// drift of the machine between rounds cancels. Rounds where `b` is zero are left out.
pub(crate) fn ratio_of_rounds(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, b)| **b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    median(&ratios)
}

/// The order of the targets in round `round`: forwards in even rounds, backwards in odd ones,
/// so that no target always runs first (ABBA).
pub(crate) fn round_order(targets: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ratio_is_the_median_of_per_round_ratios() {
        // Drift: both sides slow down in round 2; the per-round ratio stays 0.5.
        let a = [50.0, 25.0, 50.0];
        let b = [100.0, 50.0, 100.0];
        assert_eq!(ratio_of_rounds(&a, &b), Some(0.5));
        assert_eq!(ratio_of_rounds(&[1.0], &[0.0]), None);
        assert_eq!(ratio_of_rounds(&[3.0, 1.0], &[1.0, 1.0, 1.0]), Some(2.0));
    }

    #[test]
    fn rounds_alternate_direction() {
        assert_eq!(round_order(3, 0), vec![0, 1, 2]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
        assert_eq!(round_order(0, 1), Vec::<usize>::new());
    }
}
