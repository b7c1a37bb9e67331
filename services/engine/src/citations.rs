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

/// `sentence` citing `source` instead of what it cites: its first citation becomes `[source]`
/// in place ("According to [2], ..." keeps its grammar) and any later ones go; a sentence
/// citing nothing gets `[source]` before its closing mark.
pub fn cite(sentence: &str, source: u32) -> String {
    let marker = format!("[{source}]");
    let mut out = String::with_capacity(sentence.len() + marker.len() + 1);
    let mut rest = sentence;
    let mut placed = false;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        if numbers(&after[..close]).is_none() {
            out.push_str(&rest[..=open]);
            rest = after;
            continue;
        }
        let before = &rest[..open];
        if placed {
            out.push_str(before.strip_suffix(' ').unwrap_or(before));
        } else {
            out.push_str(before);
            out.push_str(&marker);
            placed = true;
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if placed {
        return out;
    }
    let body = out.trim_end();
    let end = body
        .char_indices()
        .rev()
        .take_while(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？'))
        .last()
        .map_or(body.len(), |(i, _)| i);
    format!("{} {marker}{}", body[..end].trim_end(), &body[end..])
}

#[cfg(test)]
mod tests {
    use super::{check, cite, remove};

    #[test]
    fn a_sentence_is_made_to_cite_its_source() {
        assert_eq!(
            cite("Up to 5 days carry over [2].", 1),
            "Up to 5 days carry over [1]."
        );
        assert_eq!(
            cite("According to [2], passwords need 14 characters [2, 3].", 1),
            "According to [1], passwords need 14 characters."
        );
        assert_eq!(
            cite("Core hours are 10:00 to 15:00.", 3),
            "Core hours are 10:00 to 15:00 [3]."
        );
        assert_eq!(cite("연차는 25일입니다!", 1), "연차는 25일입니다 [1]!");
        assert_eq!(cite("No mark at the end", 2), "No mark at the end [2]");
        assert_eq!(
            cite("Values in [0, 1) pass.", 2),
            "Values in [0, 1) pass [2]."
        );
    }

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
