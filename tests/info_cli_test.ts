/** End-to-end tests of `deno task info`: the JSON contract, and one clean line plus exit 2 for bad files. */
import { runScript } from "./run_script.ts";
import assert from "node:assert/strict";
import { encodeNifti, geometryFromAffine } from "../io/nifti.ts";

/** Per case, including Deno's start-up on a loaded 2-core machine; the reader itself needs milliseconds. */
const TIME_LIMIT_MS = 8000;

const info = (file: string) => runScript("cli/info.ts", [file], { denoFlags: ["--allow-read"] });

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function patched(bytes: Uint8Array, edit: (v: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer));
  return copy;
}

/** A NIfTI-2 header (little-endian) claiming a 2^40-voxel first dimension. */
function nifti2Absurd(): Uint8Array {
  const bytes = new Uint8Array(600);
  const v = new DataView(bytes.buffer);
  v.setInt32(0, 540, true);
  bytes.set([0x6e, 0x2b, 0x32, 0, 13, 10, 26, 10], 4);
  v.setInt16(12, 4, true);
  v.setInt16(14, 16, true);
  [3, 2 ** 40, 2, 2, 1, 1, 1, 1].forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), true));
  v.setBigInt64(168, 544n, true);
  return bytes;
}

/** Deterministic junk (an LCG), so the "random bytes" case is the same on every run. */
function junk(n: number): Uint8Array {
  let s = 12345;
  return Uint8Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
}

Deno.test("info: prints the one JSON object of the CLI contract for a valid file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const affine = [[-1.5, 0, 0, 10], [0, 1.5, 0, -20], [0, 0, 8, 5], [0, 0, 0, 1]];
    const data = Int16Array.from({ length: 24 }, (_, i) => i - 4);
    const file = `${dir}/ok.nii.gz`;
    await Deno.writeFile(
      file,
      await encodeNifti(data, [4, 3, 2], geometryFromAffine(affine, [4, 3, 2]), { gzip: true }),
    );
    const r = await info(file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    assert.deepEqual(JSON.parse(r.stdout), {
      format: "nifti1",
      dims: [4, 3, 2],
      pixdim: [1.5, 1.5, 8],
      datatype: "int16",
      affine,
      scl_slope: 1,
      scl_inter: 0,
      stats: { min: -4, max: 19, mean: 7.5 },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("info: every kind of broken file exits 2 with exactly one stderr line naming it, quickly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = await encodeNifti(
      new Int16Array(4 * 3 * 2),
      [4, 3, 2],
      geometryFromAffine(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        [4, 3, 2],
      ),
    );
    const gz = await gzip(good);
    const cases: Record<string, Uint8Array | null> = {
      "empty.nii": new Uint8Array(0),
      "truncated_header.nii": good.slice(0, 100),
      "random_bytes.nii": junk(4096),
      "bad_magic.nii": patched(good, (v) => v.setUint8(344, 0x78)),
      "absurd_dims.nii": patched(good, (v) => [42, 44, 46].forEach((o) => v.setInt16(o, 32767, true))),
      "negative_dim.nii": patched(good, (v) => v.setInt16(44, -5, true)),
      "short_data.nii": good.slice(0, good.length - 10),
      "unsupported_datatype.nii": patched(good, (v) => v.setInt16(70, 128, true)),
      "bad_vox_offset.nii": patched(good, (v) => v.setFloat32(108, 1e30, true)),
      "truncated.nii.gz": gz.slice(0, Math.floor(gz.length / 2)),
      "garbage.nii.gz": Uint8Array.from([0x1f, 0x8b, 8, 0, ...junk(500)]),
      "bomb_claim.nii.gz": await gzip(
        patched(good, (v) => [42, 44].forEach((o) => v.setInt16(o, 20000, true))),
      ),
      "nifti2_absurd.nii": nifti2Absurd(),
      "missing.nii": null,
      "a_directory.nii": null,
    };
    for (const [name, bytes] of Object.entries(cases)) {
      if (bytes) await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    await Deno.mkdir(`${dir}/a_directory.nii`);
    const names = Object.keys(cases);
    const results = [];
    for (let i = 0; i < names.length; i += 4) {
      results.push(...await Promise.all(names.slice(i, i + 4).map((n) => info(`${dir}/${n}`))));
    }
    for (const [i, r] of results.entries()) {
      const file = `${dir}/${names[i]}`;
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(r.code, 2, `${names[i]}: exit ${r.code}, stderr ${r.stderr}`);
      assert.equal(r.stdout, "", `${names[i]}: nothing on stdout`);
      assert.equal(lines.length, 1, `${names[i]}: one stderr line, got ${JSON.stringify(r.stderr)}`);
      assert.ok(lines[0].includes(file), `${names[i]}: the line names the file: ${lines[0]}`);
      assert.ok(!/\bat .*:\d+:\d+/.test(r.stderr), `${names[i]}: no stack trace`);
      assert.ok(r.ms < TIME_LIMIT_MS, `${names[i]}: took ${r.ms.toFixed(0)} ms`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
