// The resolve hook registered by conformance-esm.mjs: `net` and `dgram`
// (with or without `node:`) resolve to muxnet's dist/ modules, except for
// muxnet's own imports, which keep Node's builtins.
const dist = new URL('../dist/', import.meta.url).href;
const targets = { net: new URL('net/index.js', dist).href, dgram: new URL('dgram.js', dist).href };

export async function resolve(specifier, context, next) {
  const name = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  const fromMuxnet = context.parentURL !== undefined && context.parentURL.startsWith(dist);
  if (Object.hasOwn(targets, name) && !fromMuxnet) return { url: targets[name], format: 'commonjs', shortCircuit: true };
  return next(specifier, context);
}
