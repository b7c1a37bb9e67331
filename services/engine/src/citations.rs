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
        let Some(numbers) = numbers(inside) else {
            // Not a citation ("[0, 1) are accepted [2]"): look again right after this '['.
            rest = after;
            continue;
        };
        for n in numbers {
            if seen.insert(n) {
                if n >= 1 && (n as usize) <= given {
                    valid.push(n);
                } else {
                    invalid.push(n);
                }
            }
        }
        rest = &after[close + 1..];
    }
    (valid, invalid)
}

/// The numbers between a citation's brackets (`1` or `1, 2`); `None` when it is not one.
pub fn numbers(inside: &str) -> Option<Vec<u32>> {
    inside
        .split(',')
        .map(|n| n.trim().parse::<u32>().ok())
        .collect()
}

/// `answer` without the citation numbers in `invalid`: `[7]` disappears, `[1, 7]` becomes `[1]`.
pub fn remove(answer: &str, invalid: &[u32]) -> String {
    if invalid.is_empty() {
        return answer.to_owned();
    }
    let mut out = String::with_capacity(answer.len());
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        match numbers(&after[..close]) {
            Some(numbers) => {
                let kept: Vec<String> = numbers
                    .iter()
                    .filter(|n| !invalid.contains(n))
                    .map(u32::to_string)
                    .collect();
                let before = &rest[..open];
                if kept.is_empty() {
                    out.push_str(before.strip_suffix(' ').unwrap_or(before));
                } else {
                    out.push_str(before);
                    out.push_str(&format!("[{}]", kept.join(", ")));
                }
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
                continue;
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{check, remove};

    #[test]
    fn removes_only_invalid_citation_numbers() {
        assert_eq!(
            remove("Yes [7]. Also [1, 7][2] and [x].", &[7]),
            "Yes. Also [1][2] and [x]."
        );
        assert_eq!(remove("Same [1].", &[]), "Same [1].");
        assert_eq!(
            remove("Values in [0, 1) pass [9] and [2].", &[9]),
            "Values in [0, 1) pass and [2]."
        );
    }

    #[test]
    fn splits_valid_and_invalid_citations() {
        let (valid, invalid) = check("Yes [2]. Also [1, 2][7] and [x] and [0].", 3);
        assert_eq!(valid, [2, 1]);
        assert_eq!(invalid, [7, 0]);
    }

    #[test]
    fn no_citations() {
        assert_eq!(check("plain text [unclosed", 2), (vec![], vec![]));
        assert_eq!(
            check("values in [0, 1) are accepted [2].", 3),
            (vec![2], vec![])
        );
    }
}
