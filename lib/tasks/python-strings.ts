// Python's `str.split()` in TypeScript, for the tasks' word splits (cnn_dm_lm) and the metrics' tokens (ROUGE,
// BLEU): the same separators as Py_UNICODE_ISSPACE. JavaScript's \s differs (it has U+FEFF, lacks U+001C–U+001F and
// U+0085), which would move word boundaries away from LayerSkip's.
const PYTHON_WHITESPACE_RUN = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** Python's `text.split()`: runs of whitespace separate words, none empty. */
export function pythonSplit(text: string): string[] {
  return text.split(PYTHON_WHITESPACE_RUN).filter((word) => word.length > 0);
}
