/** `deno task info FILE`: one JSON object describing a NIfTI file, the quickest check of what a scan holds. */
import { readNiftiInfo } from "../io/nifti.ts";
import type { NiftiInfo } from "../io/nifti.ts";
import { parseFlags } from "../pipeline/flags.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const USAGE = "usage: deno task info FILE (a .nii or .nii.gz file)";

/**
 * The contract of docs/cli.md: used dims only, nibabel's affine, effective scaling, scaled stats over the
 * finite voxels; "non_finite" counts NaN and infinite voxels, and is there only when the scan has any (JSON
 * has no Infinity, so an infinite min would otherwise print as null and hide the problem).
 */
export function infoJson(v: NiftiInfo) {
  const { nan, inf, negInf } = v.stats.nonFinite;
  const nonFinite = nan + inf + negInf ? { non_finite: { nan, inf, "-inf": negInf } } : {};
  return {
    format: v.format,
    dims: v.dims,
    pixdim: v.pixdim,
    datatype: v.datatype,
    affine: v.affine,
    scl_slope: v.sclSlope,
    scl_inter: v.sclInter,
    stats: { min: v.stats.min, max: v.stats.max, mean: v.stats.mean, ...nonFinite },
  };
}

async function main(args: string[]) {
  const { values, positionals } = parseFlags(args, { help: { type: "boolean", short: "h" } }, true);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new UserError(USAGE);
  console.log(JSON.stringify(infoJson(await readNiftiInfo(positionals[0]))));
}

if (import.meta.main) runCli(main);
