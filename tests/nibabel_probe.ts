/**
 * Test support: runs nibabel (Python) to describe NIfTI files and to write the cases the repository has no
 * sample of, so our reader and writer are checked against the library the field treats as the reference.
 */

/** What nibabel reports for one file (data: get_fdata() as float32, x fastest). */
export interface NibabelProbe {
  format: "nifti1" | "nifti2";
  dims: number[];
  pixdim: number[];
  datatype: string;
  affine: number[][];
  qform: number[][];
  sform: number[][];
  qform_code: number;
  sform_code: number;
  pixdim_raw: number[];
  xyzt_units: number;
  slope: number;
  inter: number;
  min: number;
  max: number;
  mean: number;
  data: Float32Array;
}

/** A Python with nibabel: `python3` first (CI's apt package), then /usr/bin/python3; null if neither has it. */
export async function findNibabel(): Promise<string | null> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(python, { args: ["-c", "import nibabel, numpy"], stderr: "null" })
        .output();
      if (out.success) return python;
    } catch {
      // not installed under this name
    }
  }
  return null;
}

const PROBE = `
import json, sys, numpy as np, nibabel as nib
out = {}
for f, raw in zip(sys.argv[1::2], sys.argv[2::2]):
    img = nib.load(f)
    h = img.header
    d = img.get_fdata()
    d.astype('<f4').ravel(order='F').tofile(raw)
    slope, inter = img.dataobj.slope, img.dataobj.inter
    out[f] = dict(
        format='nifti2' if isinstance(h, nib.Nifti2Header) else 'nifti1',
        dims=list(map(int, img.shape)), pixdim=list(map(float, h.get_zooms())),
        datatype=h.get_data_dtype().name, affine=img.affine.tolist(),
        qform=h.get_qform().tolist(), sform=h.get_sform().tolist(),
        qform_code=int(h['qform_code']), sform_code=int(h['sform_code']),
        pixdim_raw=list(map(float, h['pixdim'])), xyzt_units=int(h['xyzt_units']),
        slope=float(slope), inter=float(inter),
        min=float(d.min()), max=float(d.max()), mean=float(d.mean()))
print(json.dumps(out))
`;

/** Describes each file with nibabel. */
export async function probeWithNibabel(
  python: string,
  files: string[],
): Promise<Record<string, NibabelProbe>> {
  const dir = await Deno.makeTempDir();
  try {
    const raws = files.map((_, i) => `${dir}/${i}.f32`);
    const out = await new Deno.Command(python, {
      args: ["-c", PROBE, ...files.flatMap((f, i) => [f, raws[i]])],
    })
      .output();
    if (!out.success) throw new Error(`nibabel probe failed: ${new TextDecoder().decode(out.stderr)}`);
    const parsed = JSON.parse(new TextDecoder().decode(out.stdout));
    for (const [i, f] of files.entries()) {
      parsed[f].data = new Float32Array((await Deno.readFile(raws[i])).buffer);
    }
    return parsed;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const GENERATE = `
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
rng = np.random.default_rng(7)
flip = np.array([[-1.5, 0, 0, 60], [0, 1.25, 0, -70], [0, 0, 6, 12], [0, 0, 0, 1]])
def rot(ax, deg):
    t = np.radians(deg); c, s = np.cos(t), np.sin(t); m = np.eye(4)
    i, j = [(1, 2), (0, 2), (0, 1)][ax]; m[i, i] = c; m[j, j] = c; m[i, j] = -s; m[j, i] = s
    return m
oblique = rot(0, 20) @ rot(2, -35) @ np.diag([1.6, 1.4, 8, 1]); oblique[:3, 3] = [-80, 95, -30]
ints = lambda dt, lo, hi, shape=(7, 6, 5): rng.integers(lo, hi, size=shape, dtype=dt)

# big-endian NIfTI-1 int16
h = nib.Nifti1Header(endianness='>'); h.set_data_dtype('>i2')
nib.Nifti1Image(ints(np.int16, -3000, 3000), oblique, h).to_filename(f'{d}/big_endian_int16.nii')
h = nib.Nifti1Header(endianness='>'); h.set_data_dtype('>f8')
nib.Nifti1Image(rng.normal(0, 1e5, (5, 4, 3, 2)), flip, h).to_filename(f'{d}/big_endian_float64_4d.nii.gz')
# uint8 with nibabel-chosen scl_slope / scl_inter
img = nib.Nifti1Image(rng.uniform(10, 137.5, (9, 8, 4)), flip); img.set_data_dtype(np.uint8)
img.to_filename(f'{d}/scaled_uint8.nii.gz')
# NIfTI-2: 4D float64, and big-endian int32 (exercises int64 header fields in both byte orders)
nib.Nifti2Image(rng.normal(0, 100, (6, 5, 4, 3)), oblique).to_filename(f'{d}/nifti2_4d_float64.nii.gz')
h = nib.Nifti2Header(endianness='>'); h.set_data_dtype('>i4')
nib.Nifti2Image(ints(np.int32, -2**31, 2**31 - 1), flip, h).to_filename(f'{d}/nifti2_big_endian_int32.nii')
# qform only, with a left-right flip (qfac -1)
img = nib.Nifti1Image(ints(np.int16, 0, 1000), flip); img.set_sform(None, code=0); img.set_qform(flip, code=1)
img.to_filename(f'{d}/qform_only_flip.nii')
# oblique, sheared sform that differs from the qform (readers must prefer the sform)
shear = oblique.copy(); shear[0, 1] += 0.3
img = nib.Nifti1Image(ints(np.int16, 0, 1000), shear); img.set_qform(flip, code=1); img.set_sform(shear, code=2)
img.to_filename(f'{d}/sform_differs_from_qform.nii.gz')
# no transform at all: nibabel's centred pixdim grid with x flipped
img = nib.Nifti1Image(ints(np.uint8, 0, 255), flip); img.set_sform(None, code=0); img.set_qform(None, code=0)
img.to_filename(f'{d}/no_transform.nii')
for name, dt, lo, hi in [('int8', np.int8, -128, 127), ('uint16', np.uint16, 0, 65535),
                         ('int32', np.int32, -2**31, 2**31 - 1), ('uint32', np.uint32, 0, 2**32 - 1),
                         ('int64', np.int64, -2**40, 2**40)]:
    nib.Nifti1Image(ints(dt, lo, hi), oblique, dtype=dt).to_filename(f'{d}/{name}.nii.gz')
`;

/** Writes the cases the repository has no sample of into dir; returns their paths. */
export async function generateWithNibabel(python: string, dir: string): Promise<string[]> {
  const out = await new Deno.Command(python, { args: ["-c", GENERATE, dir] }).output();
  if (!out.success) throw new Error(`nibabel generation failed: ${new TextDecoder().decode(out.stderr)}`);
  return [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`).sort();
}
