/**
 * The requests of the server load benchmark (bench/serve_load.ts): each kind, how often it comes, the status
 * the contract promises for it, and how it is sent (including clients that hang up mid-upload or mid-stream).
 */

export const TOKEN = "load-test-token";

/** Each kind of request, how often it comes (per 20), and the status it must get (0: the client hangs up). */
export const KINDS = {
  predict: [7, 200],
  png: [2, 200],
  garbage: [2, 422],
  oversized: [1, 413],
  oversized_chunked: [1, 413],
  bad_token: [2, 401],
  unknown_run: [1, 404],
  traversal: [1, 404],
  list: [1, 200],
  drop_upload: [1, 0],
  drop_stream: [1, 0],
} as const;
export type Kind = keyof typeof KINDS;

/** The kinds of n requests, shuffled by a fixed seed so every run sends the same sequence. */
export function schedule(n: number): Kind[] {
  const bag = Object.entries(KINDS).flatMap(([k, [w]]) => Array<Kind>(w).fill(k as Kind));
  const out = Array.from({ length: n }, (_, i) => bag[i % bag.length]);
  let s = 12345;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

let uploads = 0;
/**
 * The scan with a new description field (header bytes 148..227, which no reader uses for the image), so every
 * good prediction is a new upload to the server and none is answered from its cache of recent predictions.
 */
function fresh(scan: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = scan.slice();
  copy.set(new TextEncoder().encode(`load test upload ${++uploads}`.padEnd(80, " ")), 148);
  return copy;
}

/** Sends one request of a kind; resolves with the status (0 when the client hung up on purpose). */
export async function send(url: string, kind: Kind, scan: Uint8Array): Promise<number> {
  const auth = { Authorization: `Bearer ${kind === "bad_token" ? "wrong-token" : TOKEN}` };
  const bin = { ...auth, "Content-Type": "application/octet-stream" };
  const predict = `${url}api/runs/model/predict`;
  const signal = AbortSignal.timeout(120_000);
  const post = (u: string, body: BodyInit) => fetch(u, { method: "POST", headers: bin, body, signal });
  let res: Response;
  switch (kind) {
    case "predict":
      res = await post(predict, fresh(scan));
      break;
    case "bad_token":
      res = await post(predict, scan as Uint8Array<ArrayBuffer>);
      break;
    case "png":
      res = await post(`${predict}?format=png&slice=4`, scan as Uint8Array<ArrayBuffer>);
      break;
    case "garbage":
      res = await post(predict, crypto.getRandomValues(new Uint8Array(20_000)));
      break;
    case "oversized":
      res = await post(predict, new Uint8Array(5 << 20));
      break;
    case "oversized_chunked":
      res = await post(
        predict,
        ReadableStream.from(Array.from({ length: 6 }, () => new Uint8Array(1 << 20))),
      );
      break;
    case "unknown_run":
      res = await post(`${url}api/runs/no-such-run/predict`, scan as Uint8Array<ArrayBuffer>);
      break;
    case "traversal":
      res = await fetch(`${url}api/runs/..%2F..%2F..%2Fetc%2Fpasswd/events`, { headers: auth, signal });
      break;
    case "list":
      res = await fetch(`${url}api/runs`, { headers: auth, signal });
      break;
    case "drop_upload": {
      // Half the scan, then the client gives up while the server waits for the rest.
      const ctrl = new AbortController();
      const body = new ReadableStream({
        start(c) {
          c.enqueue(scan.slice(0, scan.length >> 1));
          setTimeout(() => ctrl.abort(), 50);
        },
      });
      await fetch(predict, { method: "POST", headers: bin, body, signal: ctrl.signal }).catch(() => {});
      return 0;
    }
    case "drop_stream": {
      res = await fetch(`${url}api/runs/open/events`, { headers: auth, signal });
      await res.body!.getReader().read(); // the first events, then hang up on a stream that never ends
      await res.body!.cancel().catch(() => {});
      return 0;
    }
  }
  await res.arrayBuffer();
  return res.status;
}
