//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.
//! This file only dispatches; each subcommand lives in `cli/<name>.rs`.

mod cli;

const USAGE: &str = "usage: webnlu <command> [options]

commands:
  tokenize --tokenizer PATH [--pair] [--max-length N] [--stride N] [--count] [--no-lowercase]
      one text per line on stdin (a pair: two texts separated by a tab); one JSON object
      {\"ids\",\"type_ids\",\"tokens\",\"offsets\"} per line on stdout
  elmo --options PATH --weights PATH [--batch-size N] [--stateful] [--device auto|gpu|cpu]
      one sentence per line on stdin (tokens separated by spaces); one JSON object
      {\"layers\": [layer0, layer1, layer2]} per line (per-token vectors, boundaries removed)
  embed --model DIR [--pooling mean|cls] [--no-normalize]
      one text per line on stdin; {\"embedding\": [...]} per line
  similarity --model DIR [--against FILE]
      one text per line on stdin; {\"similarities\": [...]} per line (cosine with each --against line,
      default the input lines)
  fill-mask --model DIR [--top-k N] [--pair]
      one text with [MASK] per line; {\"masks\": [[{\"token\",\"id\",\"score\"}, ...]]} per line
  classify --model DIR [--pair]
      one text per line; {\"label\",\"score\",\"scores\"} per line
  classify-tokens --model DIR [--pair]
      one text per line; {\"tokens\": [{\"token\",\"start\",\"end\",\"label\",\"score\"}, ...]} per line
      (WordPiece tokens, code-point offsets; each token once, from the window that sees it best;
      with --pair each token also has \"sequence\": 0 or 1, its offsets in that text)
  next-sentence --model DIR
      one pair a<TAB>b per line; {\"is_next\",\"scores\": [p_is_next, p_not_next],\"logits\"} per line
      (a checkpoint with the next-sentence head: BertForPreTraining / BertForNextSentencePrediction)
      (the six above also take --device auto|gpu|cpu, --max-length N, --stride N, --no-windows,
      --truncate, --batch-size N: long texts are read in overlapping windows unless told otherwise;
      --pair reads each line as a pair a<TAB>b, [CLS] a [SEP] b [SEP]; a pair longer than
      --max-length is an error naming its lengths, or with --truncate is cut longest_first)
  inspect --model DIR [--attentions] [--layers all|K,..] [--device auto|gpu|cpu]
      one text per line (a pair: two texts separated by a tab); {\"tokens\",\"offsets\",\"type_ids\",
      \"layers\",\"hidden_states\": [S][T][C]} per line, with --attentions also \"attention_layers\" and
      \"attentions\": [A][heads][T][T] (post-softmax); hidden state 0 = embeddings, K = layer K's output;
      --layers picks hidden states (attentions: of the layers that made them); one window, longer refused
  train-head --model DIR --examples FILE [--out DIR] [--freeze head|top:K|all] [--epochs N]
      [--learning-rate X] [--batch-size N] [--accumulation N] [--validation F] [--seed N]
      [--weight-decay X] [--warmup-ratio X] [--max-grad-norm X|none] [--pooling cls|mean] [--limit N]
      [--task classification|regression|multi-label]
      fine-tunes a classifier; JSON line per epoch, then a report; writes the model to --out
      (examples: text<TAB>label, text<TAB>text_pair<TAB>label for pairs, or a CSV with columns
      text, label and optional text_pair)
      (regression: numeric labels, MSE, held-out MAE and Pearson; multi-label: labels separated
      by commas, BCE, held-out exact-match accuracy)
  train-tokens --model DIR --examples FILE [--format auto|conll|jsonl] [--out DIR] and the
      options of train-head (but --pooling, --stride, --truncate)
      fine-tunes a token classifier (NER) on words with labels (CoNLL columns, or JSON lines
      {\"words\": [...], \"labels\": [...]}); each word's label on its first WordPiece; JSON line
      per epoch with the held-out entity-level precision/recall/F1 (seqeval), then a report
  train-mlm --model DIR --texts FILE [--mlm-probability P] [--out DIR] and the options of
      train-head (but --pooling, --task, --stride, --truncate)
      masked-LM fine-tuning on one text per line with BERT's corruption (P of the tokens, 0.15;
      80% [MASK], 10% random, 10% kept; seeded); JSON line per epoch with the held-out loss and
      perplexity, then a report; writes the model to --out (fill-mask reads it)
  bench model [--device cpu|gpu] [--models minilm,bert-base] [--batch N] [--seq N] [--json]
      tokens/s of forward and training steps, peak memory per freezing policy; with --json,
      `memory`: the device's GPU and CPU-pool bytes before and after load, forwards, training,
      and after the model is dropped and the device trimmed
  elmo-train --options PATH --weights PATH --data TSV [--train N] [--test N] [--epochs E]
             [--batch-size B] [--lr X] [--seed S] [--mix | --end-to-end] [--device auto|gpu|cpu]
      sentiment classifier on ELMo features (label = sign of the rating in id<TAB>rating<TAB>text);
      one JSON line per epoch (train loss/accuracy, held-out accuracy and chance)
  bench tokenizer [--input FILE] [--tokenizer PATH] [--repeat N] [--json]
      single-thread throughput of webnlu vs the `tokenizers` crate (build with --features bench-peers)
  bench elmo [--options P --weights P] [--input FILE] [--sentences N] [--batch-size B]
             [--device cpu|gpu|both] [--repeat R] [--json]
      ELMo biLM sentences/s per device (default: AllenNLP's fixture model, movie-review sentences)
  bench ops [--json] [--device cpu|gpu] [--threads N]
      matmul GFLOP/s at BERT-base shapes and per-op times, CPU and GPU, numpy/OpenBLAS alongside
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tokenize") => cli::tokenize::run(&args[1..]),
        Some("elmo") => cli::elmo::run(&args[1..]),
        Some("elmo-train") => cli::elmo_train::run(&args[1..]),
        Some("bench") => cli::bench::run(&args[1..]),
        Some("embed") => cli::model_tasks::embed(&args[1..]),
        Some("similarity") => cli::model_tasks::similarity(&args[1..]),
        Some("fill-mask") => cli::model_tasks::fill_mask(&args[1..]),
        Some("classify") => cli::model_tasks::classify(&args[1..]),
        Some("classify-tokens") => cli::model_tasks::classify_tokens(&args[1..]),
        Some("next-sentence") => cli::model_tasks::next_sentence(&args[1..]),
        Some("inspect") => cli::inspect::run(&args[1..]),
        Some("train-head") => cli::train_head::run(&args[1..]),
        Some("train-tokens") => cli::train_tokens::run(&args[1..]),
        Some("train-mlm") => cli::train_mlm::run(&args[1..]),
        Some("-h") | Some("--help") | Some("help") => {
            print!("{USAGE}");
            return;
        }
        Some(other) => Err(webnlu::Error::invalid(format!(
            "unknown command {other:?}\n{USAGE}"
        ))),
        None => Err(webnlu::Error::invalid(format!("no command given\n{USAGE}"))),
    };
    if let Err(error) = result {
        eprintln!("webnlu: {error}");
        std::process::exit(1);
    }
}
