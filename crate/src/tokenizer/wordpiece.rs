//! `WordPiece` (HF `tokenizers::models::wordpiece`): splits one pre-tokenized word into vocab
//! tokens, greedily taking the longest vocab entry from the left; continuation pieces carry the
//! `##` prefix; a word with no full split, or longer than `max_input_chars_per_word`, becomes one
//! `[UNK]`.
//!
//! The matcher is LinMaxMatch (Song, Salcianu, Song, Dopson, Zhou: "Fast WordPiece Tokenization",
//! EMNLP 2021): a trie of the vocab with, per node, a failure link and the "failure pops" (the
//! tokens that greedy longest-match-first has committed to when the walk cannot go on). Each byte
//! of the word is consumed once and each pop is emitted once, so a word costs O(its length + its
//! tokens), not the O(n^2) substring lookups of the textbook loop. `greedy_longest_match` below is
//! that textbook loop, kept as the reference the property tests compare against.
//!
//! The trie works on bytes: vocab entries are whole UTF-8 strings, so a match always ends on a
//! character boundary of the (valid UTF-8) word.
//!
//! A node's failure pops are stored as references to other nodes' pops (its parent's, then those
//! of the failure links it skipped), not copied out: copies cost the sum of all node depths, which
//! is quadratic in the length of one long vocab entry (3,000 `a`s with `a` and `##a` in the vocab
//! made 36 MB of pops from a 3 KB file). The references stay linear in the vocab's bytes, and a
//! pop list that only repeats another is shared, so emitting costs O(tokens emitted).

use super::vocab::Vocab;
use crate::error::{Error, Result};

const NONE: u32 = u32::MAX;

/// One token produced for a word: its id and its byte range inside the (normalized) word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordPieceToken {
    pub id: u32,
    pub start: u32, // byte offset in the word
    pub end: u32,   // byte offset in the word (exclusive)
}

/// A trie node. Edges live in `WordPiece::edge_labels/edge_targets[first_edge..first_edge+n_edges]`,
/// sorted by label. Failure pops live in `WordPiece::pops[pops_start..pops_start+pops_len]`, as
/// node references: a token node stands for its token, another node for its own pops.
#[derive(Debug, Clone, Copy)]
struct Node {
    first_edge: u32,
    n_edges: u32,
    fail: u32, // node to continue from after popping, NONE = the word cannot be split
    pops_start: u32,
    pops_len: u32,
    token: u32,     // the vocab id this node spells, NONE if none
    token_len: u32, // its length in bytes (without the prefix under the suffix root)
}

#[derive(Debug, Clone)]
pub struct WordPiece {
    pub unk_token: String,
    pub unk_id: u32,
    pub continuing_subword_prefix: String,
    pub max_input_chars_per_word: usize,
    nodes: Vec<Node>,       // (N,) trie nodes; 0 = word-start root, 1 = suffix root
    edge_labels: Vec<u8>,   // (E,) byte on each edge
    edge_targets: Vec<u32>, // (E,) child node of each edge
    root_children: Box<[u32; 256]>, // dense child table of the word-start root
    suffix_children: Box<[u32; 256]>, // dense child table of the suffix root
    pops: Vec<u32>,         // (P,) failure pops, as node references
}

const ROOT: u32 = 0;
const SUFFIX_ROOT: u32 = 1;

impl WordPiece {
    /// Builds the matcher for `vocab`. Fails when `unk_token` is not in the vocab.
    pub fn new(
        vocab: &Vocab,
        unk_token: &str,
        continuing_subword_prefix: &str,
        max_input_chars_per_word: usize,
    ) -> Result<WordPiece> {
        let unk_id = vocab.id(unk_token).ok_or_else(|| {
            Error::format(
                "vocab",
                format!("the unknown token {unk_token:?} is not in the vocabulary"),
            )
        })?;
        // The trie is built from the entries in byte order, one root at a time: the child a
        // node needs is then either the child it made last or a new one, so no per-node map is
        // needed, and each node's children come out sorted by label. Equal keys keep vocab order
        // (the id breaks ties): the later id takes the node, as a map insert would.
        // token_at[node] = (token id, piece length) when the node spells a vocab entry.
        let mut root_keys: Vec<(&[u8], u32)> = Vec::with_capacity(vocab.len());
        let mut suffix_keys: Vec<(&[u8], u32)> = Vec::new();
        for (id, token) in vocab.tokens().iter().enumerate() {
            // Every entry can start a word (HF looks the bare substring up at position 0).
            root_keys.push((token.as_bytes(), id as u32));
            // Entries with the prefix can continue a word, matched without their prefix.
            if !continuing_subword_prefix.is_empty() {
                if let Some(piece) = token.strip_prefix(continuing_subword_prefix) {
                    if !piece.is_empty() {
                        suffix_keys.push((piece.as_bytes(), id as u32));
                    }
                }
            }
        }
        // (bytes, id) pairs are unique: one order (crate::sort: one sort in the wasm module).
        crate::sort::sort(&mut root_keys);
        crate::sort::sort(&mut suffix_keys);
        let mut token_at: Vec<Option<(u32, u32)>> = vec![None, None];
        let mut last_child: Vec<Option<(u8, u32)>> = vec![None, None]; // (N,) newest edge
        let mut edges: Vec<(u32, u8, u32)> = Vec::new(); // (E,) parent, label, child
        for (root, keys) in [(ROOT, &root_keys), (SUFFIX_ROOT, &suffix_keys)] {
            for &(bytes, id) in keys.iter() {
                let mut node = root;
                for &b in bytes {
                    node = match last_child[node as usize] {
                        Some((label, child)) if label == b => child,
                        _ => {
                            let child = token_at.len() as u32;
                            token_at.push(None);
                            last_child.push(None);
                            last_child[node as usize] = Some((b, child));
                            edges.push((node, b, child));
                            child
                        }
                    };
                }
                token_at[node as usize] = Some((id, bytes.len() as u32));
            }
        }

        // Freeze the edges by parent with a counting sort: each node's edges get consecutive
        // slots, in creation order, which is label order.
        let mut nodes: Vec<Node> = token_at
            .iter()
            .map(|token| Node {
                first_edge: 0,
                n_edges: 0,
                fail: NONE,
                pops_start: 0,
                pops_len: 0,
                token: token.map_or(NONE, |(id, _)| id),
                token_len: token.map_or(0, |(_, len)| len),
            })
            .collect();
        for &(parent, _, _) in &edges {
            nodes[parent as usize].n_edges += 1;
        }
        let mut first_free = 0u32;
        for node in nodes.iter_mut() {
            node.first_edge = first_free;
            first_free += node.n_edges;
        }
        let mut edge_labels = vec![0u8; edges.len()];
        let mut edge_targets = vec![NONE; edges.len()];
        let mut placed = vec![0u32; nodes.len()]; // (N,) edges placed so far per node
        for &(parent, label, child) in &edges {
            let slot = (nodes[parent as usize].first_edge + placed[parent as usize]) as usize;
            edge_labels[slot] = label;
            edge_targets[slot] = child;
            placed[parent as usize] += 1;
        }
        let mut root_children = Box::new([NONE; 256]);
        let mut suffix_children = Box::new([NONE; 256]);
        for &(parent, label, child) in &edges {
            match parent {
                ROOT => root_children[label as usize] = child,
                SUFFIX_ROOT => suffix_children[label as usize] = child,
                _ => {}
            }
        }
        let mut model = WordPiece {
            unk_token: unk_token.to_string(),
            unk_id,
            continuing_subword_prefix: continuing_subword_prefix.to_string(),
            max_input_chars_per_word,
            nodes,
            edge_labels,
            edge_targets,
            root_children,
            suffix_children,
            pops: Vec::new(),
        };

        // Failure links and pops, breadth first (Algorithm 2 of the paper): a node's link always
        // points to a shallower node, whose link and pops are then already known.
        //   token node v:      pops(v) = [v],                   fail(v) = suffix root
        //   other node v=u+c:  follow w = fail(u), fail(fail(u)), ... collecting their pops until
        //                      w has a child on c; pops(v) = pops(u) ++ collected, fail(v) = w.c;
        //                      no such w: fail(v) = NONE (greedy matching gets stuck: [UNK]).
        // Stored as references [u, w...] (see the module doc); with nothing collected, v shares
        // u's list. A reference to a node whose list has one entry is replaced by that entry, so
        // every non-token reference expands to two or more: emitting stays linear in the tokens.
        let mut queue = std::collections::VecDeque::new();
        for root in [ROOT, SUFFIX_ROOT] {
            for (b, c) in model.edges_of(root) {
                queue.push_back((root, b, c));
            }
        }
        let mut scratch: Vec<u32> = Vec::new();
        while let Some((parent, byte, node)) = queue.pop_front() {
            let (fail, start, len);
            if token_at[node as usize].is_some() {
                (fail, start, len) = (SUFFIX_ROOT, model.pops.len() as u32, 1);
                model.pops.push(node);
            } else if parent == ROOT || parent == SUFFIX_ROOT {
                (fail, start, len) = (NONE, 0, 0);
            } else {
                let p = model.nodes[parent as usize];
                scratch.clear();
                let mut w = p.fail;
                let mut found = NONE;
                while w != NONE {
                    let child = model.child(w, byte);
                    if child != NONE {
                        found = child;
                        break;
                    }
                    scratch.push(w);
                    w = model.nodes[w as usize].fail;
                }
                if found == NONE {
                    (fail, start, len) = (NONE, 0, 0);
                } else if scratch.is_empty() {
                    (fail, start, len) = (found, p.pops_start, p.pops_len);
                } else {
                    fail = found;
                    start = model.pops.len() as u32;
                    let parent_ref = model.pop_ref(parent);
                    model.pops.push(parent_ref);
                    for &w in &scratch {
                        let w_ref = model.pop_ref(w);
                        model.pops.push(w_ref);
                    }
                    len = model.pops.len() as u32 - start;
                }
            }
            let entry = &mut model.nodes[node as usize];
            entry.fail = fail;
            entry.pops_start = start;
            entry.pops_len = len;
            for (b, c) in model.edges_of(node) {
                queue.push_back((node, b, c));
            }
        }
        Ok(model)
    }

    /// The reference that stands for `node`'s pops in another node's list: the node itself, or
    /// the single entry of its list.
    fn pop_ref(&self, node: u32) -> u32 {
        let n = self.nodes[node as usize];
        if n.token == NONE && n.pops_len == 1 {
            self.pops[n.pops_start as usize]
        } else {
            node
        }
    }

    /// The edges of `node` as (label, child), sorted by label.
    fn edges_of(&self, node: u32) -> impl Iterator<Item = (u8, u32)> + '_ {
        let n = self.nodes[node as usize];
        let range = n.first_edge as usize..(n.first_edge + n.n_edges) as usize;
        self.edge_labels[range.clone()]
            .iter()
            .copied()
            .zip(self.edge_targets[range].iter().copied())
    }

    /// The child of `node` on `byte`, or NONE.
    #[inline(always)]
    fn child(&self, node: u32, byte: u8) -> u32 {
        if node == ROOT {
            return self.root_children[byte as usize];
        }
        if node == SUFFIX_ROOT {
            return self.suffix_children[byte as usize];
        }
        let n = self.nodes[node as usize];
        let start = n.first_edge as usize;
        let labels = &self.edge_labels[start..start + n.n_edges as usize];
        if labels.len() <= 8 {
            for (i, &l) in labels.iter().enumerate() {
                if l == byte {
                    return self.edge_targets[start + i];
                }
            }
            NONE
        } else {
            match labels.binary_search(&byte) {
                Ok(i) => self.edge_targets[start + i],
                Err(_) => NONE,
            }
        }
    }

    /// Appends the tokens of one word to `out`. `char_count` is the number of characters of the
    /// word (the caller knows it already; HF compares it with max_input_chars_per_word).
    #[inline]
    pub fn tokenize_word(&self, word: &[u8], char_count: usize, out: &mut Vec<WordPieceToken>) {
        let mark = out.len();
        if char_count > self.max_input_chars_per_word || !self.match_word(word, out) {
            out.truncate(mark);
            out.push(WordPieceToken {
                id: self.unk_id,
                start: 0,
                end: word.len() as u32,
            });
        }
    }

    /// LinMaxMatch over one word (Algorithm 1 of the paper, single word). Returns false when the
    /// word cannot be split into vocab pieces.
    #[inline]
    fn match_word(&self, word: &[u8], out: &mut Vec<WordPieceToken>) -> bool {
        let mut node = ROOT;
        let mut position = 0u32; // byte where the next popped token starts
        for &byte in word {
            loop {
                let child = self.child(node, byte);
                if child != NONE {
                    node = child;
                    break;
                }
                if !self.pop(&mut node, &mut position, out) {
                    return false;
                }
            }
        }
        // End of word: pop until the remaining text is empty (the walk is back at the suffix root).
        while node != SUFFIX_ROOT {
            if !self.pop(&mut node, &mut position, out) {
                return false;
            }
        }
        true
    }

    /// Emits the failure pops of `node` and follows its failure link; false = dead end.
    #[inline(always)]
    fn pop(&self, node: &mut u32, position: &mut u32, out: &mut Vec<WordPieceToken>) -> bool {
        let n = self.nodes[*node as usize];
        if n.fail == NONE {
            return false;
        }
        if n.token != NONE {
            // A token node pops just its token (the common case).
            out.push(WordPieceToken {
                id: n.token,
                start: *position,
                end: *position + n.token_len,
            });
            *position += n.token_len;
            *node = n.fail;
            return true;
        }
        // Depth-first over the references; `pending` (the rest of each outer list) allocates
        // only when a list nests another.
        let mut pending: Vec<(u32, u32)> = Vec::new();
        let (mut next, mut end) = (n.pops_start, n.pops_start + n.pops_len);
        loop {
            while next < end {
                let reference = self.pops[next as usize];
                next += 1;
                let r = self.nodes[reference as usize];
                if r.token != NONE {
                    out.push(WordPieceToken {
                        id: r.token,
                        start: *position,
                        end: *position + r.token_len,
                    });
                    *position += r.token_len;
                } else {
                    if next < end {
                        pending.push((next, end));
                    }
                    (next, end) = (r.pops_start, r.pops_start + r.pops_len);
                }
            }
            match pending.pop() {
                Some(range) => (next, end) = range,
                None => break,
            }
        }
        *node = n.fail;
        true
    }
}

/// The textbook WordPiece loop (as in BERT's original `tokenization.py` and HF's
/// `WordPiece::tokenize`): at each start, try the longest substring first and shorten it one
/// character at a time. O(n^2) lookups per word; the reference for LinMaxMatch in tests.
pub fn greedy_longest_match(
    vocab: &Vocab,
    unk_id: u32,
    continuing_subword_prefix: &str,
    max_input_chars_per_word: usize,
    word: &str,
) -> Vec<WordPieceToken> {
    let unk = vec![WordPieceToken {
        id: unk_id,
        start: 0,
        end: word.len() as u32,
    }];
    if word.chars().count() > max_input_chars_per_word {
        return unk;
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut candidate = String::new();
    while start < word.len() {
        let mut end = word.len();
        let mut found = None;
        while start < end {
            candidate.clear();
            if start > 0 {
                candidate.push_str(continuing_subword_prefix);
            }
            candidate.push_str(&word[start..end]);
            if let Some(id) = vocab.id(&candidate) {
                found = Some(id);
                break;
            }
            end -= word[..end].chars().next_back().map_or(1, |c| c.len_utf8());
        }
        match found {
            Some(id) => out.push(WordPieceToken {
                id,
                start: start as u32,
                end: end as u32,
            }),
            None => return unk,
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[&str]) -> Vocab {
        Vocab::from_entries(
            tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect(),
            "test vocab",
        )
        .unwrap()
    }

    fn pieces(model: &WordPiece, v: &Vocab, word: &str) -> Vec<String> {
        let mut out = Vec::new();
        model.tokenize_word(word.as_bytes(), word.chars().count(), &mut out);
        out.iter()
            .map(|t| v.token(t.id).unwrap().to_string())
            .collect()
    }

    #[test]
    fn splits_like_bert() {
        let v = vocab(&[
            "[UNK]", "un", "##aff", "##able", "a", "##b", "abc", "##c", "##bcd",
        ]);
        let m = WordPiece::new(&v, "[UNK]", "##", 100).unwrap();
        assert_eq!(pieces(&m, &v, "unaffable"), ["un", "##aff", "##able"]);
        // Greedy takes "abc" first and then cannot split "d": the whole word is [UNK], even
        // though "a ##bcd" would have worked.
        assert_eq!(pieces(&m, &v, "abcd"), ["[UNK]"]);
        assert_eq!(pieces(&m, &v, "abc"), ["abc"]);
        assert_eq!(pieces(&m, &v, "ab"), ["a", "##b"]);
        assert_eq!(pieces(&m, &v, "x"), ["[UNK]"]);
    }

    #[test]
    fn too_long_words_are_unknown() {
        let v = vocab(&["[UNK]", "a", "##a"]);
        let m = WordPiece::new(&v, "[UNK]", "##", 3).unwrap();
        assert_eq!(pieces(&m, &v, "aaa"), ["a", "##a", "##a"]);
        assert_eq!(pieces(&m, &v, "aaaa"), ["[UNK]"]);
    }
}
