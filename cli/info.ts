/** `deno task info FILE`: one JSON object describing a NIfTI file, the quickest check of what a scan holds. */
import { readNifti } from "../io/nifti.ts";
import type { NiftiVolume } from "../io/nifti.ts";
import { parseFlags } from "../pipeline/flags.ts";
import { runCli } from "../pipeline/run_cli.ts";
import { UserError } from "../errors.ts";

const USAGE = "usage: deno task info FILE (a .nii or .nii.gz file)";

/** The contract of docs/cli.md: used dims only, nibabel's affine, effective scaling, scaled stats. */
export function infoJson(v: NiftiVolume) {
  return {
    format: v.format,
    dims: v.dims,
    pixdim: v.pixdim,
    datatype: v.datatype,
    affine: v.affine,
    scl_slope: v.sclSlope,
    scl_inter: v.sclInter,
    stats: { min: v.stats.min, max: v.stats.max, mean: v.stats.mean },
  };
}

async function main(args: string[]) {
  const { values, positionals } = parseFlags(args, { help: { type: "boolean", short: "h" } }, true);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new UserError(USAGE);
  console.log(JSON.stringify(infoJson(await readNifti(positionals[0]))));
}

if (import.meta.main) runCli(main);
