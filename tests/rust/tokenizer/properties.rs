//! Property tests: LinMaxMatch (webnlu's WordPiece) gives exactly what greedy
//! longest-match-first gives, on random vocabularies and random words; and the whole tokenizer
//! never panics and returns offsets inside the text on random Unicode input.
//! A small seeded PRNG keeps every run identical (a failure prints the seed to replay).

use webnlu::tokenizer::wordpiece::{greedy_longest_match, WordPiece};
use webnlu::tokenizer::{
    EncodeBuffers, Padding, PaddingStrategy, Tokenizer, Truncation, TruncationStrategy, Vocab,
    VocabOptions,
};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_string(rng: &mut Rng, alphabet: &[char], min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| *rng.pick(alphabet)).collect()
}

#[test]
fn linmaxmatch_equals_greedy_longest_match_first() {
    let alphabets: [&[char]; 4] = [
        &['a', 'b'],
        &['a', 'b', 'c', 'd'],
        &['a', 'b', 'é', '日', '😀'],
        &['a', 'b', '#', 'c'], // '#' in words and tokens: "##" must still act only as the prefix
    ];
    let mut rng = Rng(0x5EED_0001);
    let mut words_checked = 0;
    for round in 0..600 {
        let alphabet = alphabets[round % alphabets.len()];
        // Random vocab: [UNK], some word-start pieces, some "##" continuation pieces.
        let mut tokens = vec!["[UNK]".to_string()];
        let size = 1 + rng.below(40);
        for _ in 0..size {
            let piece = random_string(&mut rng, alphabet, 1, 5);
            let token = if rng.below(2) == 0 {
                format!("##{piece}")
            } else {
                piece
            };
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        let vocab = Vocab::from_entries(
            tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i as u32))
                .collect(),
            "random vocab",
        )
        .unwrap();
        let max_chars = if round % 5 == 0 {
            1 + rng.below(8)
        } else {
            100
        };
        let model = WordPiece::new(&vocab, "[UNK]", "##", max_chars).unwrap();
        for _ in 0..150 {
            let word = random_string(&mut rng, alphabet, 1, 14);
            let want = greedy_longest_match(&vocab, model.unk_id, "##", max_chars, &word);
            let mut got = Vec::new();
            model.tokenize_word(word.as_bytes(), word.chars().count(), &mut got);
            assert_eq!(
                got, want,
                "round {round}: word {word:?}, vocab {tokens:?}, max_chars {max_chars}"
            );
            words_checked += 1;
        }
    }
    assert_eq!(words_checked, 600 * 150);
}

/// The trie is built from the vocab sorted by bytes, whatever order the ids give: a vocab listed
/// backwards, with chains of shared prefixes, multi-byte characters, the prefix's own characters
/// inside tokens and another prefix than "##", splits every short word as greedy matching does.
#[test]
fn linmaxmatch_equals_greedy_whatever_the_vocab_order_and_the_prefix() {
    let alphabet = ['a', 'b', 'é', '#', '@'];
    let mut words = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = words
            .iter()
            .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
            .collect();
        words.extend(longer);
    }
    words.retain(|w| !w.is_empty());
    for prefix in ["##", "@@"] {
        let pieces = [
            "a", "ab", "aba", "abé", "b", "é", "éa", "#", "@", "a#", "b@",
        ];
        let mut tokens = vec!["[UNK]".to_string()];
        for piece in pieces {
            tokens.push(piece.to_string());
            tokens.push(format!("{prefix}{piece}"));
        }
        tokens.push(prefix.to_string());
        for order in ["as listed", "backwards"] {
            let listed: Vec<&String> = match order {
                "as listed" => tokens.iter().collect(),
                _ => tokens.iter().rev().collect(),
            };
            let vocab = Vocab::from_entries(
                listed
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.to_string(), i as u32))
                    .collect(),
                "vocab",
            )
            .unwrap();
            let model = WordPiece::new(&vocab, "[UNK]", prefix, 100).unwrap();
            for word in &words {
                let want = greedy_longest_match(&vocab, model.unk_id, prefix, 100, word);
                let mut got = Vec::new();
                model.tokenize_word(word.as_bytes(), word.chars().count(), &mut got);
                assert_eq!(got, want, "prefix {prefix:?}, vocab {order}, word {word:?}");
            }
        }
    }
}

/// Long vocab entries that share their letters with short ones: the failure pops of a deep node
/// are stored as references to shallower nodes' pops, nested many levels; long words of those
/// letters still split exactly as greedy matching splits them.
#[test]
fn linmaxmatch_equals_greedy_with_long_entries() {
    let mut tokens: Vec<String> = ["[UNK]", "a", "##a", "b", "##b", "ab", "##ab", "##aab"]
        .map(String::from)
        .to_vec();
    for n in [40, 97, 300] {
        tokens.push(format!("{}b", "a".repeat(n)));
        tokens.push(format!("##{}ba", "a".repeat(n / 2)));
    }
    let vocab = Vocab::from_entries(
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect(),
        "long entries",
    )
    .unwrap();
    let model = WordPiece::new(&vocab, "[UNK]", "##", 1000).unwrap();
    let mut rng = Rng(0x5EED_0002);
    for round in 0..200 {
        let word: String = match round % 4 {
            0 => "a".repeat(1 + rng.below(400)),
            1 => format!("{}b", "a".repeat(rng.below(400))),
            2 => format!("{}ba", "a".repeat(rng.below(400))),
            _ => random_string(&mut rng, &['a', 'a', 'a', 'b'], 1, 400),
        };
        let want = greedy_longest_match(&vocab, model.unk_id, "##", 1000, &word);
        let mut got = Vec::new();
        model.tokenize_word(word.as_bytes(), word.chars().count(), &mut got);
        assert_eq!(got, want, "round {round}: word of {} chars", word.len());
    }
}

#[test]
fn random_unicode_never_panics_and_offsets_stay_inside() {
    let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n##a\nb\n##b\né\nab\n中\n!\n";
    let mut rng = Rng(0x5EED_0002);
    for options in [
        VocabOptions::default(),
        VocabOptions {
            lowercase: false,
            ..VocabOptions::default()
        },
    ] {
        let tokenizer = Tokenizer::from_vocab_str(vocab, &options).unwrap();
        for _ in 0..3000 {
            let n = rng.below(30);
            let text: String = (0..n)
                .map(|_| match rng.below(4) {
                    0 => *rng.pick(&[
                        'a', 'b', ' ', '!', '[', 'M', 'A', 'S', 'K', ']', '\u{301}', '\t',
                    ]),
                    1 => char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'),
                    2 => char::from_u32(0x1_0000 + rng.below(0x2_0000) as u32).unwrap_or('?'),
                    _ => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
                })
                .collect();
            let chars = text.chars().count();
            let e = tokenizer.encode(&text).unwrap();
            assert_eq!(e.ids.len(), e.offsets.len());
            for &(s, t) in &e.offsets {
                assert!(
                    s <= t && t <= chars,
                    "offsets ({s}, {t}) outside {chars} chars of {text:?}"
                );
            }
            let decoded = tokenizer.decode(&e.ids, true).unwrap();
            assert!(decoded.len() <= 4 * text.len() + 16);
        }
    }
}

/// `encode_reusing` with one set of buffers kept across calls (what the wasm `Tokenizer` does)
/// gives exactly what a tokenizer with the same truncation and padding set gives with fresh
/// buffers, whatever came before: long texts then short ones, single texts and pairs, with and
/// without truncation (overflow windows) and padding.
#[test]
fn reused_encode_buffers_give_the_same_encodings_as_fresh_ones() {
    let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n##a\nb\n##b\né\nab\n中\n!\n";
    let mut tokenizer = Tokenizer::from_vocab_str(vocab, &VocabOptions::default()).unwrap();
    let mut rng = Rng(0x5EED_0003);
    let mut buffers = EncodeBuffers::default();
    let alphabet = ['a', 'b', ' ', '!', 'é', '中', 'A', '\u{301}', '😀'];
    for round in 0..2000 {
        let text = random_string(&mut rng, &alphabet, 0, if round % 2 == 0 { 60 } else { 6 });
        let pair = (rng.below(3) == 0).then(|| random_string(&mut rng, &alphabet, 0, 20));
        let truncation = (rng.below(2) == 0).then(|| Truncation {
            max_length: 5 + rng.below(20),
            stride: rng.below(3),
            strategy: TruncationStrategy::LongestFirst,
        });
        let padding = (rng.below(2) == 0).then(|| Padding {
            strategy: PaddingStrategy::Fixed(rng.below(40)),
            ..Padding::default()
        });
        let reused = tokenizer.encode_reusing(
            &text,
            pair.as_deref(),
            truncation.as_ref(),
            padding.as_ref(),
            &mut buffers,
        );
        tokenizer.set_truncation(truncation);
        tokenizer.set_padding(padding);
        let fresh = match pair.as_deref() {
            Some(pair) => tokenizer.encode_pair(&text, pair),
            None => tokenizer.encode(&text),
        };
        match (reused, fresh) {
            (Ok(reused), Ok(fresh)) => {
                assert_eq!(reused, fresh, "round {round}: {text:?} + {pair:?}")
            }
            (Err(reused), Err(fresh)) => assert_eq!(reused.to_string(), fresh.to_string()),
            (reused, fresh) => panic!("round {round}: {reused:?} against {fresh:?}"),
        }
    }
}
