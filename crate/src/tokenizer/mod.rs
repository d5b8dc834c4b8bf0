//! WordPiece tokenization with Hugging Face `tokenizers` parity (filled in by the tokenizer work).
