/** Module resolve hook for swap-enqueue.mjs (runs on the loader thread). */
let target;

export function initialize(data) {
  target = data.target;
}

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  // The prototypes themselves may import the original module.
  if (resolved.url.endsWith('/dist/queue/enqueue.js') && !context.parentURL?.includes('/bench/intake/prototypes/')) {
    return { ...resolved, url: target, shortCircuit: true };
  }
  return resolved;
}
