/**
 * How deep a run config may nest. The real one is 4 levels deep; every step that reads a config
 * (merging layers, validation, copies, path resolution) recurses, so a value 10,000 levels deep
 * would overflow the stack there. The coordinator's StartRun and the CLI (before it starts any
 * service) refuse a deeper one with this limit.
 */
export const MAX_CONFIG_DEPTH = 32;

/** Whether a JSON value nests deeper than `max` levels (measured without recursion; a scalar is 0 levels, `{}` is 1). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
