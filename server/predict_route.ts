/**
 * POST /api/runs/:id/predict: a NIfTI body in (gzip or not), the uint8 label map out on the scan's grid and
 * geometry, or (`format=png&slice=k`) an overlay of one slice, or (`format=json`) the per-class volumes. The
 * same code as `deno task predict` (readNiftiBytes, predictVolume, encodeNifti); nothing is written to disk.
 */
import type { Context } from "hono";
import { encodeNifti, type NiftiVolume, readNiftiBytes } from "../io/nifti.ts";
import { encodePng } from "../io/png.ts";
import { ConfigError } from "../errors.ts";
import { applyOptionValues, int, oneOf } from "../pipeline/option_schema.ts";
import { predictVolume } from "../stages/predict.ts";
import { overlaySlice } from "../stages/preview.ts";
import { HttpError } from "./http_error.ts";
import { labelVolumes } from "./label_volumes.ts";
import type { ModelCache } from "./model_cache.ts";
import type { PredictGate } from "./predict_gate.ts";

/** The query of a prediction, in the option vocabulary of the command line. */
const PREDICT_QUERY = {
  format: oneOf(["nifti", "png", "json"]),
  /** 0-based slice index along z (PNG only; default: the middle slice). */
  slice: int(0),
  weights: oneOf(["final", "best"]),
};

/** Upload media types taken as NIfTI bytes; a request without a type is accepted too (curl -T, fetch of bytes). */
const NIFTI_TYPES = ["application/octet-stream", "application/gzip", "application/x-gzip"];

/** A finished prediction, kept so paging through slices of the same upload does not predict again. */
interface Prediction {
  scan: NiftiVolume;
  labels: Uint8Array; // [Z, Y, X]
  gzip: boolean;
}

/** Recent predictions by model version and upload digest (bounded: a few volumes of memory). */
const RECENT = 4;

export interface PredictDeps {
  models: ModelCache;
  gate: PredictGate;
}

function query(c: Context) {
  try {
    return applyOptionValues(PREDICT_QUERY, { format: "nifti", weights: "final" }, c.req.query(), "query");
  } catch (err) {
    if (err instanceof ConfigError) throw new HttpError(400, "bad query", err.message);
    throw err;
  }
}

function checkType(c: Context): void {
  const type = (c.req.header("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  if (type && !NIFTI_TYPES.includes(type)) {
    throw new HttpError(
      415,
      "unsupported media type",
      `Content-Type ${type}: send the NIfTI file's bytes as ` +
        `${NIFTI_TYPES.join(" or ")}`,
    );
  }
}

async function body(c: Context): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await c.req.arrayBuffer());
  } catch (err) {
    // The body-limit middleware's own error must reach it (it answers 413).
    if ((err as Error).name === "BodyLimitError") throw err;
    throw new HttpError(
      400,
      "upload interrupted",
      `the request body could not be read (${(err as Error).message})`,
    );
  }
  if (bytes.length === 0) {
    throw new HttpError(422, "invalid NIfTI", "upload: empty body; send a .nii or .nii.gz file");
  }
  return bytes;
}

async function digest(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The predict handler for run folder dir. */
export function predictHandler(deps: PredictDeps) {
  const recent = new Map<string, Prediction>();

  async function predict(dir: string, weights: "final" | "best", bytes: Uint8Array): Promise<Prediction> {
    return await deps.gate.run(async () => {
      const lease = await deps.models.acquire(dir, weights);
      try {
        const key = `${lease.key}\0${await digest(bytes)}`;
        const hit = recent.get(key);
        if (hit) {
          recent.delete(key);
          recent.set(key, hit);
          return hit;
        }
        const scan = await readNiftiBytes(bytes, "upload");
        const cfg = lease.run.config;
        const labels = await predictVolume(lease.run.model, scan, {
          imageSize: cfg.imageSize,
          normalization: cfg.normalization,
          batchSize: cfg.batchSize,
        });
        const result = { scan, labels, gzip: bytes[0] === 0x1f && bytes[1] === 0x8b };
        recent.set(key, result);
        for (const k of recent.keys()) if (recent.size > RECENT) recent.delete(k);
        return result;
      } finally {
        lease.release();
      }
    });
  }

  return async (c: Context, dir: string): Promise<Response> => {
    const q = query(c);
    checkType(c);
    const bytes = await body(c);
    const { scan, labels, gzip } = await predict(dir, q.weights!, bytes);
    const volumes = labelVolumes(labels, scan);
    const dims = scan.dims.slice(0, 3);
    const [nx, ny, nz] = [dims[0], dims[1] ?? 1, dims[2] ?? 1];
    c.header("X-Volumes-Ml", JSON.stringify(volumes.volumes_ml));
    c.header("X-Voxels", volumes.voxels.join(","));
    if (q.format === "json") {
      return c.json({ dims, pixdim: scan.pixdim, slices: nz, weights: q.weights, ...volumes });
    }
    if (q.format === "png") {
      const k = q.slice ?? Math.floor(nz / 2);
      if (k >= nz) {
        throw new HttpError(422, "no such slice", `slice=${k}: the volume has slices 0..${nz - 1}`);
      }
      const at = k * nx * ny;
      const rgb = overlaySlice(
        scan.data.subarray(at, at + nx * ny),
        labels.subarray(at, at + nx * ny),
        ny,
        nx,
        1,
      );
      c.header("X-Slice", `${k}/${nz}`);
      return c.body(encodePng(rgb, nx, ny, 3) as Uint8Array<ArrayBuffer>, 200, {
        "Content-Type": "image/png",
      });
    }
    const out = await encodeNifti(labels, dims, scan.geometry, { gzip });
    return c.body(out as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": gzip ? "application/gzip" : "application/octet-stream",
      "Content-Disposition": `attachment; filename="labels.nii${gzip ? ".gz" : ""}"`,
    });
  };
}
