// The dispute-classifier component: waystation:plugin/scorer, built with componentize-js.
// The logic is in classifier.js; this file parses the JSON, maps errors onto the WIT
// `result` and logs one line. A world-level import is the module's default import.
import log from 'log';
import { classify, InputError } from './classifier.js';

// componentize-js turns a thrown value with a `payload` into the `err` case of the result;
// anything else thrown would trap, so every failure is caught and wrapped.
const fail = (message) => {
  log('warn', `dispute-classifier: ${message}`);
  return { payload: message };
};

export function score(input) {
  let doc;
  try {
    doc = JSON.parse(input);
  } catch (e) {
    throw fail(`input is not valid JSON: ${e && e.message}`);
  }
  try {
    const result = classify(doc);
    const category = result.labels.find((l) => l.key === 'category');
    log('info', `dispute-classifier: ${category ? category.value : 'unclassified'} (confidence ${result.score})`);
    return result;
  } catch (e) {
    throw fail(e instanceof InputError ? e.message : `internal error: ${e && e.message}`);
  }
}
