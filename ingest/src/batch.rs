//! Which chunks go into one embedding call. A batch is padded to its longest text, so batches of
//! similar lengths waste little compute on padding; the accounting shows how much is left.

/// Tokens the model sees per text besides its own: [CLS] and [SEP].
const SPECIAL_TOKENS: u64 = 2;

/// Token accounting of embedding calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Padding {
    /// Tokens of the texts themselves (special tokens included).
    pub real: u64,
    /// Tokens the model computed: every text padded to the longest of its batch.
    pub computed: u64,
}

impl Padding {
    pub fn add(&mut self, other: Padding) {
        self.real += other.real;
        self.computed += other.computed;
    }

    /// Share of computed tokens that were padding, 0..1.
    pub fn wasted_share(&self) -> f64 {
        if self.computed == 0 {
            0.0
        } else {
            1.0 - self.real as f64 / self.computed as f64
        }
    }
}

/// Splits the texts of `lengths` (tokens each) into batches of at most `size`, as index lists.
/// With `by_length`, texts of similar length share a batch; otherwise they keep their order.
pub fn plan(lengths: &[u32], size: usize, by_length: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    if by_length {
        order.sort_by_key(|&i| lengths[i]);
    }
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// What embedding `batch` of texts with `lengths` costs.
pub fn padding(lengths: &[u32], batch: &[usize]) -> Padding {
    let longest = batch
        .iter()
        .map(|&i| u64::from(lengths[i]))
        .max()
        .unwrap_or(0);
    Padding {
        real: batch
            .iter()
            .map(|&i| u64::from(lengths[i]) + SPECIAL_TOKENS)
            .sum(),
        computed: (longest + SPECIAL_TOKENS) * batch.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(lengths: &[u32], by_length: bool) -> Padding {
        let mut total = Padding::default();
        for batch in plan(lengths, 2, by_length) {
            total.add(padding(lengths, &batch));
        }
        total
    }

    #[test]
    fn sorting_by_length_cuts_padding_and_keeps_every_text_once() {
        let lengths = [200, 10, 190, 12];
        let batches = plan(&lengths, 2, true);
        assert_eq!(batches, vec![vec![1, 3], vec![2, 0]]);
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(all, [0, 1, 2, 3]);

        let unsorted = cost(&lengths, false);
        let sorted = cost(&lengths, true);
        assert_eq!(unsorted.real, sorted.real);
        assert_eq!(unsorted.computed, 2 * 202 + 2 * 192);
        assert_eq!(sorted.computed, 2 * 14 + 2 * 202);
        assert!(sorted.wasted_share() < 0.05, "{sorted:?}");
        assert!(unsorted.wasted_share() > 0.4, "{unsorted:?}");
    }

    #[test]
    fn unsorted_batches_keep_document_order() {
        assert_eq!(plan(&[5, 1, 3], 2, false), vec![vec![0, 1], vec![2]]);
        assert!(plan(&[], 32, true).is_empty());
    }
}
