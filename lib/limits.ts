// The limits TypeScript checks, mirroring core/limits.h (the one list of every limit, README "Limits and trust
// model"). Each is refused with an error naming the option or file and the limit, before anything it sizes exists.

/** loadModel({ threads }) and quantize({ threads }): at most this many; above 4 per available core run as that many. */
export const MAX_THREADS = 256;
/** loadModel({ contextLength }): positions one context's KV cache holds (kMaxContextLength). */
export const MAX_CONTEXT_LENGTH = 1 << 20;
/** tokenizer.json, tokenizer_config.json (kMaxTokenizerFileBytes). */
export const MAX_TOKENIZER_FILE_BYTES = 64 * 1024 * 1024;
/** generation_config.json and the other small JSON files (kMaxJsonFileBytes). */
export const MAX_JSON_FILE_BYTES = 16 * 1024 * 1024;
/** Token ids in tokenizer.json (added_tokens, model.vocab) must be below this (kMaxVocabSize). */
export const MAX_VOCAB_SIZE = 1 << 24;
