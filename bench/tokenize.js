// tokenize.js: the JavaScript references' encode throughput, for bench/tokenize.py: transformers.js's
// tokenizer (@lenml/tokenizers) over the tokenizer.json a package ships, or gpt-3-encoder. Each text
// file is encoded whole, once to warm up (JIT; both keep a word cache across calls, which the timed
// runs then use), then the best of REPS runs, as bench_tokenize.c does for tfmc. gpt-3-encoder
// joins each word's ids to the whole list with Array.concat, which is quadratic in the text's
// length, so it is given the text in lines, cut before each line break that follows a character
// other than white space: no piece of GPT-2's pattern spans such a cut, so the ids are the same
// (bench/tokenize.py checks that they are).
//   node tokenize.js PACKAGE REPS TEXT...  ->  `file=... bytes=... ids=... hash=... mb_s=... ms=...` per text
const fs = require('fs');
const [pkg, repsArg, ...files] = process.argv.slice(2);
const reps = Number(repsArg);
let encode;
if (pkg === 'gpt-3-encoder') {
    const enc = require('gpt-3-encoder');
    encode = (t) => {
        const ids = [];
        for (const line of t.split(/(?<=\S)(?=\n)/u)) for (const id of enc.encode(line)) ids.push(id);
        return ids;
    };
} else {
    const tok = require(pkg).fromPreTrained();
    encode = (t) => tok.encode(t, { add_special_tokens: false });
}
// FNV-1a over the ids, 32 bits, as bench_tokenize.c
const hashIds = (ids) => {
    let h = 2166136261;
    for (const id of ids) h = Math.imul(h ^ id, 16777619) >>> 0;
    return h;
};
for (const file of files) {
    const bytes = fs.readFileSync(file);
    const text = bytes.toString('utf8');
    let ids = encode(text);
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        ids = encode(text);
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        if (dt < best) best = dt;
    }
    console.log(`file=${file} bytes=${bytes.length} ids=${ids.length} hash=${hashIds(ids).toString(16).padStart(8, '0')} ` +
                `mb_s=${(bytes.length / best / 1e6).toFixed(2)} ms=${(best * 1e3).toFixed(2)}`);
}
