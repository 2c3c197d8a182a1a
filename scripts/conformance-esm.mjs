// Preloaded (`node --import`) into each test by scripts/conformance.js, with
// conformance-hook.js for require(): the `.mjs` tests' and their helpers'
// `import … from 'net'` / `'node:dgram'` (static or dynamic) get muxnet's
// drop-in modules through the resolve hook in conformance-esm-hooks.mjs.
import { register } from 'node:module';

register('./conformance-esm-hooks.mjs', import.meta.url);
