/**
 * The web page and its assets, all served by the app itself: the page's own files from server/page/, the
 * chart (uPlot) and the SSE client (@microsoft/fetch-event-source) read from their npm packages, so the page
 * fetches nothing from elsewhere. The paths form a fixed table; no request path ever reaches the file system.
 */
import { createRequire } from "node:module";
import { UserError } from "../errors.ts";

export interface Asset {
  bytes: Uint8Array;
  type: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const HTML = "text/html; charset=utf-8";

const page = (name: string) => new URL(`./page/${name}`, import.meta.url).pathname;
const pkg = (spec: string) => createRequire(import.meta.url).resolve(spec);
const sse = (name: string) => pkg(`@microsoft/fetch-event-source/lib/esm/${name}.js`);

/** URL path to file and type. The SSE client's modules import "./fetch" and "./parse" without extensions. */
function table(): Record<string, [() => string, string]> {
  return {
    "/": [() => page("index.html"), HTML],
    "/page.js": [() => page("page.js"), JS],
    "/common.js": [() => page("common.js"), JS],
    "/curves.js": [() => page("curves.js"), JS],
    "/viewer.js": [() => page("viewer.js"), JS],
    "/page.css": [() => page("page.css"), CSS],
    "/vendor/uplot.js": [() => pkg("uplot/dist/uPlot.esm.js"), JS],
    "/vendor/uplot.css": [() => pkg("uplot/dist/uPlot.min.css"), CSS],
    "/vendor/fetch-event-source/index.js": [() => sse("index"), JS],
    "/vendor/fetch-event-source/fetch": [() => sse("fetch"), JS],
    "/vendor/fetch-event-source/parse": [() => sse("parse"), JS],
  };
}

let loaded: Map<string, Asset> | undefined;

/** Every asset, read once; a missing package is a user error naming it (run `deno install`). */
export function pageAssets(): Map<string, Asset> {
  if (loaded) return loaded;
  const out = new Map<string, Asset>();
  for (const [path, [file, type]] of Object.entries(table())) {
    let name = path;
    try {
      name = file();
      out.set(path, { bytes: Deno.readFileSync(name), type });
    } catch (err) {
      throw new UserError(
        `web page asset ${path} (${name}): cannot be read (${(err as Error).message}); run \`deno install\``,
      );
    }
  }
  return loaded = out;
}
