/**
 * `deno task checkpoint-info FILE [--sha256] [--keys]`: one JSON object describing a checkpoint (format, tensor
 * count, parameters, dtypes, keys under their official SAM names) without reading its tensor data, so users
 * can see why a file will or will not load before spending memory on it.
 */
import { parseFlags } from "../pipeline/flags.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";
import { detectFormat, planKeys, sha256File, unwrapStateDict } from "../model/checkpoint.ts";
import { readSafetensorsHeader } from "../io/safetensors.ts";
import { flattenTensors, openPth } from "../io/pth.ts";
import { checkedNumel } from "../io/host_tensor.ts";

export interface CheckpointInfo {
  file: string;
  format: string;
  tensors: number;
  parameters: number;
  dtypes: Record<string, number>;
  sha256?: string;
  keys?: Record<string, { dtype: string; shape: number[] }>;
}

/** Describes path from its header/pickle alone; keys are reported under the names readStateDict would give. */
export async function checkpointInfo(path: string, opts: { sha256?: boolean; keys?: boolean } = {}) {
  const format = await detectFormat(path);
  const raw = new Map<string, { dtype: string; shape: number[] }>();
  if (format === "safetensors") {
    for (const [k, e] of (await readSafetensorsHeader(path)).entries) {
      raw.set(k, { dtype: e.dtype, shape: e.shape });
    }
  } else {
    const archive = await openPth(path);
    archive.close();
    for (const [k, r] of flattenTensors(unwrapStateDict(archive.root, path), path)) {
      raw.set(k, { dtype: r.storage.dtype, shape: r.shape });
    }
  }
  const info: CheckpointInfo = { file: path, format, tensors: 0, parameters: 0, dtypes: {} };
  const keys: Record<string, { dtype: string; shape: number[] }> = {};
  for (const [name, official] of planKeys([...raw.keys()], path)) {
    const t = raw.get(name)!;
    info.tensors++;
    info.parameters += checkedNumel(t.shape) ?? 0;
    info.dtypes[t.dtype] = (info.dtypes[t.dtype] ?? 0) + 1;
    keys[official] = t;
  }
  if (opts.sha256) info.sha256 = await sha256File(path);
  if (opts.keys) info.keys = keys;
  return info;
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(args, {
    sha256: { type: "boolean" },
    keys: { type: "boolean" },
  }, true);
  if (positionals.length !== 1) throw new UserError("usage: checkpoint-info FILE [--sha256] [--keys]");
  console.log(JSON.stringify(await checkpointInfo(positionals[0], values)));
}

if (import.meta.main) runCli(main);
