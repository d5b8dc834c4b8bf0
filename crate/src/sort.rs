//! The crate's sorts, through one instance of the standard library's sort.
//!
//! `slice::sort_unstable_by` is generic over the element and the comparator: every call site
//! with its own element type or closure compiles its own copy of the whole sort (quicksort,
//! heapsort, the small sorts, pivot selection: about 5 KB of wasm each). Here every sort orders
//! a list of `usize` indices with a `&dyn` comparator, so the module holds one copy; the element
//! type only reaches the small permutation step. The order is a stable sort's: elements that
//! compare equal keep their order (the index is the last tie-breaker), so a call site that
//! sorted with a total order gets exactly the order it got before.

use std::cmp::Ordering;

/// Sorts the indices `order` by `compare(a, b)` (ties: the smaller index first), the one sort
/// instance of the crate.
pub fn sort_indices(order: &mut [usize], compare: &dyn Fn(usize, usize) -> Ordering) {
    order.sort_unstable_by(|&a, &b| compare(a, b).then(a.cmp(&b)));
}

/// Reorders `order` so that its first `k` entries are the `k` smallest by `compare` (ties: the
/// smaller index first), in no particular order; `k` at most `order.len()`. The partial sort
/// that picks a top k out of a long list without sorting all of it.
pub fn select_smallest(order: &mut [usize], k: usize, compare: &dyn Fn(usize, usize) -> Ordering) {
    if k > 0 && k < order.len() {
        order.select_nth_unstable_by(k - 1, |&a, &b| compare(a, b).then(a.cmp(&b)));
    }
}

/// The permutation that sorts `items` by `compare`: `items[order[0]]` comes first. Stable.
pub fn sorted_order<T>(items: &[T], compare: impl Fn(&T, &T) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    sort_indices(&mut order, &|a, b| compare(&items[a], &items[b]));
    order
}

/// Sorts `items` by `compare`, stable (what `slice::sort_by` does).
pub fn sort_by<T>(items: &mut Vec<T>, compare: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_order(items, compare);
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().map(|i| {
        slots[i]
            .take()
            .expect("a permutation names every index once")
    }));
}

/// Sorts `items` ascending (what `slice::sort` does).
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

/// Sorts `items` ascending and removes the repeats (a sorted set as a `Vec`).
pub fn sort_dedup<T: Ord>(items: &mut Vec<T>) {
    sort(items);
    items.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_by_is_stable_and_matches_the_standard_sort() {
        // (key, original position): equal keys must keep their positions' order
        let keys = [
            5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3,
        ];
        let mut items: Vec<(u32, usize)> = keys.iter().copied().zip(0..).collect();
        let mut expected = items.clone();
        expected.sort_by_key(|&(k, _)| k);
        sort_by(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, expected);
    }

    #[test]
    fn sort_dedup_gives_the_sorted_set() {
        let mut words: Vec<String> = ["b", "a", "c", "a", "b"].map(String::from).to_vec();
        sort_dedup(&mut words);
        assert_eq!(words, ["a", "b", "c"]);
    }

    #[test]
    fn select_smallest_puts_the_k_smallest_first() {
        let values = [0.5f32, 0.1, 0.9, 0.1, 0.7, 0.3];
        let mut order: Vec<usize> = (0..values.len()).collect();
        select_smallest(&mut order, 3, &|a, b| values[a].total_cmp(&values[b]));
        let mut first: Vec<usize> = order[..3].to_vec();
        first.sort_unstable();
        assert_eq!(first, [1, 3, 5]);
        // k = 0 and k = len leave a valid permutation
        select_smallest(&mut order, 0, &|a, b| values[a].total_cmp(&values[b]));
        select_smallest(&mut order, 6, &|a, b| values[a].total_cmp(&values[b]));
        let mut all = order.clone();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);
    }
}
