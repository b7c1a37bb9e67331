//! answer -> citations: which `[n]` the model wrote, and whether each names a source it was given.

use std::collections::BTreeSet;

/// Citation numbers in order of first appearance, split into those that name one of
/// `given` sources and those that do not. Handles `[1]`, `[1, 2]` and `[1][2]`.
pub fn check(answer: &str, given: usize) -> (Vec<u32>, Vec<u32>) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    let mut seen = BTreeSet::new();
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inside = &after[..close];
        let numbers: Option<Vec<u32>> = inside
            .split(',')
            .map(|n| n.trim().parse::<u32>().ok())
            .collect();
        if let Some(numbers) = numbers {
            for n in numbers {
                if seen.insert(n) {
                    if n >= 1 && (n as usize) <= given {
                        valid.push(n);
                    } else {
                        invalid.push(n);
                    }
                }
            }
        }
        rest = &after[close + 1..];
    }
    (valid, invalid)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn splits_valid_and_invalid_citations() {
        let (valid, invalid) = check("Yes [2]. Also [1, 2][7] and [x] and [0].", 3);
        assert_eq!(valid, [2, 1]);
        assert_eq!(invalid, [7, 0]);
    }

    #[test]
    fn no_citations() {
        assert_eq!(check("plain text [unclosed", 2), (vec![], vec![]));
    }
}
