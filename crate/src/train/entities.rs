//! Entity-level precision, recall and F1 of tag sequences, as seqeval computes them by default
//! (`seqeval.metrics.classification_report` / `f1_score`, not `mode="strict"`): the tags of a
//! sentence are cut into entities (a type and a span of words) by seqeval's `get_entities`
//! rules, which read IOB1, IOB2 (BIO), IOE and BIOES tags leniently, e.g. an `I-PER` after `O`
//! starts a PER entity, and a change of type ends one. A predicted entity is right only when a
//! true entity has the same type, start and end.
//!
//! ```text
//! per type t:  precision = |true_t ∩ pred_t| / |pred_t|    recall = |true_t ∩ pred_t| / |true_t|
//!              f1 = 2 p r / (p + r)                         (0 when a denominator is 0)
//! overall:     the same over the entities of every type (seqeval's "micro avg")
//! ```
//!
//! A tag is `<prefix>-<type>` (`B-PER`), or `O`; a tag without a `-` has its first character
//! as the prefix and the rest as the type, as in seqeval.

use std::collections::BTreeMap;

/// One entity: its type and the span of words `start..=end`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entity {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// (prefix, type) of a tag as seqeval splits it: `B-PER` -> (B, PER); `O` -> (O, _).
fn split_tag(tag: &str) -> (char, &str) {
    let prefix = tag.chars().next().unwrap_or('O');
    let rest = &tag[prefix.len_utf8().min(tag.len())..];
    let kind = rest.split_once('-').map_or(rest, |(_, kind)| kind);
    (prefix, if kind.is_empty() { "_" } else { kind })
}

fn end_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(prev_tag, 'E' | 'S')
        || (prev_tag == 'B' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag == 'I' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag != 'O' && prev_tag != '.' && prev_type != kind)
}

fn start_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (prev_tag == 'E' && matches!(tag, 'E' | 'I'))
        || (prev_tag == 'S' && matches!(tag, 'E' | 'I'))
        || (prev_tag == 'O' && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != kind)
}

/// The entities of one sentence's tags (seqeval's `get_entities`), in order.
pub fn entities<S: AsRef<str>>(tags: &[S]) -> Vec<Entity> {
    let mut found = Vec::new();
    let (mut prev_tag, mut prev_type, mut begin) = ('O', String::new(), 0);
    // the tags, then an O that ends the last entity
    let tags = tags
        .iter()
        .map(|t| split_tag(t.as_ref()))
        .chain([('O', "_")]);
    for (i, (tag, kind)) in tags.enumerate() {
        if end_of_chunk(prev_tag, tag, &prev_type, kind) {
            found.push(Entity {
                kind: prev_type.clone(),
                start: begin,
                end: i - 1,
            });
        }
        if start_of_chunk(prev_tag, tag, &prev_type, kind) {
            begin = i;
        }
        prev_tag = tag;
        prev_type = kind.to_string();
    }
    found
}

/// Precision, recall and F1 of one entity type (or of all), with its number of true entities.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EntityScore {
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
    /// True entities of this type.
    pub support: usize,
}

impl EntityScore {
    fn new(correct: usize, predicted: usize, support: usize) -> EntityScore {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (p, r) = (ratio(correct, predicted), ratio(correct, support));
        let f1 = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        EntityScore {
            precision: p as f32,
            recall: r as f32,
            f1: f1 as f32,
            support,
        }
    }
}

/// The entity-level scores of predicted tag sequences against the true ones.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EntityScores {
    /// Over every type together (seqeval's micro average).
    pub overall: EntityScore,
    /// Per entity type, by name.
    pub per_type: BTreeMap<String, EntityScore>,
}

/// Counts of true, predicted and correct entities per type, sentence by sentence.
#[derive(Clone, Debug, Default)]
pub struct EntityCounts {
    /// type -> (true, predicted, correct)
    counts: BTreeMap<String, (usize, usize, usize)>,
}

impl EntityCounts {
    /// Adds one sentence: its true tags and the predicted ones (the same length).
    pub fn add<S: AsRef<str>, P: AsRef<str>>(&mut self, truth: &[S], predicted: &[P]) {
        debug_assert_eq!(truth.len(), predicted.len());
        let truth = entities(truth);
        let predicted = entities(predicted);
        for e in &truth {
            self.counts.entry(e.kind.clone()).or_default().0 += 1;
        }
        for e in &predicted {
            let entry = self.counts.entry(e.kind.clone()).or_default();
            entry.1 += 1;
            if truth.contains(e) {
                entry.2 += 1;
            }
        }
    }

    /// The scores of the sentences added. A type that is only ever predicted is listed with
    /// support 0 (seqeval lists the types of the true and of the predicted tags alike).
    pub fn scores(&self) -> EntityScores {
        let mut all = (0, 0, 0);
        // filled by insert: collecting a map sorts its entries (a copy of the stable sort)
        let mut per_type = BTreeMap::new();
        for (kind, &(truth, predicted, correct)) in &self.counts {
            all = (all.0 + truth, all.1 + predicted, all.2 + correct);
            per_type.insert(kind.clone(), EntityScore::new(correct, predicted, truth));
        }
        EntityScores {
            overall: EntityScore::new(all.2, all.1, all.0),
            per_type,
        }
    }
}
