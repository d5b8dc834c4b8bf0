//! ELMo's character ids, as AllenNLP's `ELMoCharacterMapper` (allennlp/data/token_indexers/
//! elmo_indexer.py) computes them: each word becomes 50 ids = its UTF-8 bytes (at most 48)
//! between a begin-of-word and an end-of-word marker, then padding; the sentence markers `<S>`
//! and `</S>` have their own ids. Every id is shifted by +1 so that 0 can mean "no word" when
//! sentences of different lengths are batched.

/// Characters per word (AllenNLP `max_word_length`).
pub const MAX_WORD_LENGTH: usize = 50;
/// Symbols before the +1 shift: 256 byte values + 5 markers (the char embedding has 262 rows).
pub const BEGINNING_OF_SENTENCE: u16 = 256;
pub const END_OF_SENTENCE: u16 = 257;
pub const BEGINNING_OF_WORD: u16 = 258;
pub const END_OF_WORD: u16 = 259;
pub const PADDING: u16 = 260;

pub const BOS_TOKEN: &str = "<S>";
pub const EOS_TOKEN: &str = "</S>";

/// The 50 character ids (already shifted by +1) of one word. `<S>` and `</S>` map to the
/// sentence markers, as in AllenNLP.
pub fn word_char_ids(word: &str) -> [u16; MAX_WORD_LENGTH] {
    let mut ids = [PADDING; MAX_WORD_LENGTH];
    ids[0] = BEGINNING_OF_WORD;
    if word == BOS_TOKEN || word == EOS_TOKEN {
        ids[1] = if word == BOS_TOKEN {
            BEGINNING_OF_SENTENCE
        } else {
            END_OF_SENTENCE
        };
        ids[2] = END_OF_WORD;
    } else {
        // AllenNLP: word.encode("utf-8", "ignore")[: max_word_length - 2]; a cut can split a
        // character's bytes, exactly as there.
        let bytes = &word.as_bytes()[..word.len().min(MAX_WORD_LENGTH - 2)];
        for (k, &b) in bytes.iter().enumerate() {
            ids[k + 1] = b as u16;
        }
        ids[bytes.len() + 1] = END_OF_WORD;
    }
    for id in &mut ids {
        *id += 1;
    }
    ids
}

/// Character ids of a tokenized sentence, with `<S>` and `</S>` around it when
/// `add_sentence_markers` (AllenNLP's `ELMoTokenCharactersIndexer` as the `Elmo` module uses it).
/// Shape (words (+2), 50).
pub fn sentence_char_ids(
    words: &[&str],
    add_sentence_markers: bool,
) -> Vec<[u16; MAX_WORD_LENGTH]> {
    let mut out = Vec::with_capacity(words.len() + 2);
    if add_sentence_markers {
        out.push(word_char_ids(BOS_TOKEN));
    }
    out.extend(words.iter().map(|w| word_char_ids(w)));
    if add_sentence_markers {
        out.push(word_char_ids(EOS_TOKEN));
    }
    out
}

/// A batch of sentences as one (batch, max_words, 50) buffer, rows of shorter sentences
/// filled with 0 (AllenNLP `batch_to_ids`, which adds no sentence markers).
pub fn batch_char_ids(sentences: &[Vec<&str>]) -> (Vec<u16>, usize) {
    let max_words = sentences.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![0u16; sentences.len() * max_words * MAX_WORD_LENGTH];
    for (s, sentence) in sentences.iter().enumerate() {
        for (w, word) in sentence.iter().enumerate() {
            let at = (s * max_words + w) * MAX_WORD_LENGTH;
            out[at..at + MAX_WORD_LENGTH].copy_from_slice(&word_char_ids(word));
        }
    }
    (out, max_words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_allennlp() {
        // AllenNLP test_elmo_indexer: "<S>" -> [259, 257, 260, 261, 261, ...].
        let bos = word_char_ids("<S>");
        assert_eq!(&bos[..4], &[259, 257, 260, 261]);
        assert!(bos[3..].iter().all(|&c| c == 261));
        let eos = word_char_ids("</S>");
        assert_eq!(&eos[..3], &[259, 258, 260]);
        // "Hello": 'H' = 72 -> 73 ...
        let hello = word_char_ids("Hello");
        assert_eq!(&hello[..8], &[259, 73, 102, 109, 109, 112, 260, 261]);
        let long = word_char_ids(&"a".repeat(60));
        assert_eq!(long[48], 98);
        assert_eq!(long[49], 260);
    }
}
