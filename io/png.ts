/** PNG encoding of 8-bit RGB/grey images (via fast-png), for previews and overlays a person looks at. */
import { encode } from "fast-png";

/** Encodes an 8-bit image with `channels` 1 (grey), 3 (RGB) or 4 (RGBA) per pixel, rows top to bottom. */
export function encodePng(
  pixels: Uint8Array, // [height, width, channels]
  width: number,
  height: number,
  channels: 1 | 3 | 4 = 3,
): Uint8Array {
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`encodePng: ${pixels.length} bytes for ${width} x ${height} x ${channels}`);
  }
  return encode({ width, height, data: pixels, channels, depth: 8 });
}
