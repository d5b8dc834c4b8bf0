//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.
//!
//! One declaration (clap's derive API): the commands and what they do are [`Command`] below,
//! each command's options the `*Args` struct in its own file (`tokenize.rs`, `model_tasks.rs`,
//! `train_head.rs`, ...). `webnlu --help`, `webnlu <command> --help` and the errors for an
//! unknown, missing or invalid option (exit status 2) all come from it. A command that fails
//! after its options are read prints `webnlu: <the error>` and exits with status 1.

mod bench;
mod bench_elmo;
mod bench_model;
mod bench_ops;
mod elmo;
mod elmo_train;
mod fixtures;
mod inspect;
mod memory;
mod model_tasks;
mod tokenize;
mod train_head;
mod train_mlm;
mod train_tokens;
mod training_options;

use clap::{Parser, Subcommand};

/// BERT, DistilBERT and ELMo on the command line: texts on stdin, one per line; one JSON object
/// per line on stdout.
#[derive(Parser)]
#[command(name = "webnlu", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// WordPiece tokenization: {"ids","type_ids","tokens","offsets"} per line.
    ///
    /// One text per line on stdin (a pair with --pair: two texts separated by a tab); one JSON
    /// object {"ids","type_ids","tokens","offsets"} per line on stdout, offsets in code points,
    /// plus "overflowing" when truncation left overflow windows. --count prints only
    /// {"texts": N, "tokens": M}.
    Tokenize(tokenize::TokenizeArgs),
    /// ELMo's layers: {"layers": [layer0, layer1, layer2]} per line.
    ///
    /// One sentence per line on stdin (tokens separated by spaces); one JSON object
    /// {"layers": [layer0, layer1, layer2]} per line (per-token vectors, boundaries removed).
    Elmo(elmo::ElmoArgs),
    /// Sentence embeddings: {"embedding": [...]} per line.
    ///
    /// One text per line on stdin; {"embedding": [...]} per line.
    Embed(model_tasks::EmbedArgs),
    /// Cosine similarities: {"similarities": [...]} per line.
    ///
    /// One text per line on stdin; {"similarities": [...]} per line: the cosine with each line
    /// of --against (default: the input lines).
    Similarity(model_tasks::SimilarityArgs),
    /// The masked-LM head's guesses for [MASK]: {"masks": [[{"token","id","score"}, ...]]} per line.
    ///
    /// One text with [MASK] per line; {"masks": [[{"token","id","score"}, ...]]} per line.
    FillMask(model_tasks::FillMaskArgs),
    /// Sequence classification: {"label","score","scores"} per line.
    ///
    /// One text per line; {"label","score","scores"} per line. Long texts are read in
    /// overlapping windows whose logits are averaged unless told otherwise.
    Classify(model_tasks::PairTaskArgs),
    /// Token classification (NER): {"tokens": [{"token","start","end","label","score"}, ...]} per line.
    ///
    /// One text per line; {"tokens": [{"token","start","end","label","score"}, ...]} per line
    /// (WordPiece tokens, code-point offsets; each token once, from the window that sees it
    /// best; with --pair each token also has "sequence": 0 or 1, its offsets in that text).
    ClassifyTokens(model_tasks::PairTaskArgs),
    /// Next-sentence prediction: {"is_next","scores","logits"} per pair a<TAB>b.
    ///
    /// One pair a<TAB>b per line; {"is_next","scores": [p_is_next, p_not_next],"logits"} per
    /// line (a checkpoint with the next-sentence head: BertForPreTraining /
    /// BertForNextSentencePrediction).
    NextSentence(model_tasks::NextSentenceArgs),
    /// Hidden states and attentions of every layer, per line.
    ///
    /// One text per line (a pair: two texts separated by a tab); {"tokens","offsets",
    /// "type_ids","layers","hidden_states": [S][T][C]} per line, with --attentions also
    /// "attention_layers" and "attentions": [A][heads][T][T] (post-softmax); hidden state 0 =
    /// embeddings, K = layer K's output; --layers picks hidden states (attentions: of the layers
    /// that made them); one window, longer refused.
    Inspect(inspect::InspectArgs),
    /// Fine-tunes a sequence classifier (or regressor, or multi-label classifier).
    ///
    /// JSON line per epoch, then a report; writes the model to --out. Examples: text<TAB>label,
    /// text<TAB>text_pair<TAB>label for pairs, VADER's id<TAB>rating<TAB>text, or a CSV with
    /// columns text, label and optional text_pair. Regression: numeric labels, MSE, held-out MAE
    /// and Pearson; multi-label: labels separated by commas, BCE, held-out exact-match accuracy.
    TrainHead(train_head::TrainHeadArgs),
    /// Fine-tunes a token classifier (NER) on words with labels.
    ///
    /// Examples: CoNLL columns, or JSON lines {"words": [...], "labels": [...]}; each word's
    /// label on its first WordPiece. JSON line per epoch with the held-out entity-level
    /// precision/recall/F1 (seqeval), then a report; writes the model to --out.
    TrainTokens(train_tokens::TrainTokensArgs),
    /// Masked-LM fine-tuning (domain adaptation) on one text per line.
    ///
    /// BERT's corruption (--mlm-probability of the tokens; 80% [MASK], 10% random, 10% kept;
    /// seeded); JSON line per epoch with the held-out loss and perplexity, then a report;
    /// writes the model to --out (fill-mask reads it).
    TrainMlm(train_mlm::TrainMlmArgs),
    /// A sentiment classifier on ELMo features.
    ///
    /// Label = sign of the rating in id<TAB>rating<TAB>text; one JSON line per epoch (train
    /// loss/accuracy, held-out accuracy and chance).
    ElmoTrain(elmo_train::ElmoTrainArgs),
    /// Benchmarks: tokenizer, model, elmo, ops.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tokenize(args) => tokenize::run(args),
        Command::Elmo(args) => elmo::run(args),
        Command::Embed(args) => model_tasks::embed(args),
        Command::Similarity(args) => model_tasks::similarity(args),
        Command::FillMask(args) => model_tasks::fill_mask(args),
        Command::Classify(args) => model_tasks::classify(args),
        Command::ClassifyTokens(args) => model_tasks::classify_tokens(args),
        Command::NextSentence(args) => model_tasks::next_sentence(args),
        Command::Inspect(args) => inspect::run(args),
        Command::TrainHead(args) => train_head::run(args),
        Command::TrainTokens(args) => train_tokens::run(args),
        Command::TrainMlm(args) => train_mlm::run(args),
        Command::ElmoTrain(args) => elmo_train::run(args),
        Command::Bench(benchmark) => bench::run(benchmark),
    };
    if let Err(error) = result {
        eprintln!("webnlu: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks of the declaration (names, conflicts, defaults that parse).
    #[test]
    fn the_declaration_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
