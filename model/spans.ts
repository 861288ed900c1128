/**
 * The consecutive [start, count] spans that cut `total` items into pieces of at most `size`: how attention,
 * the encoder MLP and the encoder's image passes walk their chunks.
 */
export function spans(total: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let start = 0; start < total; start += size) out.push([start, Math.min(size, total - start)]);
  return out;
}
