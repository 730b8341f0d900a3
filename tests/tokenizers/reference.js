// reference.js: the expected ids and texts for tests/tokenizers/check_tokenizers.py, from
// tokenizers written elsewhere: transformers.js's (@lenml/tokenizers) over the tokenizer.json a
// package ships, and gpt-3-encoder (OpenAI's GPT-2 encoder ported to JavaScript).
//   node reference.js PACKAGE CORPUS.json  ->  JSON on standard output
const fs = require('fs');
const [pkg, corpusPath] = process.argv.slice(2);
const texts = JSON.parse(fs.readFileSync(corpusPath, 'utf8'));
const out = [];
if (pkg === 'gpt-3-encoder') {
    const enc = require('gpt-3-encoder');
    for (const t of texts) {
        const ids = enc.encode(t);
        out.push({ ids, text: enc.decode(ids) });
    }
} else {
    const tok = require(pkg).fromPreTrained();
    for (const t of texts) {
        const ids = tok.encode(t, { add_special_tokens: false });
        // tfmc decodes exactly what tokenizer.json says: no clean-up of spaces before punctuation
        const decode = (skip) => ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : '';
        out.push({ ids, special: tok.encode(t, { add_special_tokens: true }), text: decode(false), skipped: decode(true) });
    }
}
process.stdout.write(JSON.stringify(out));
