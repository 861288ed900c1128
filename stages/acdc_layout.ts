/**
 * Finds the labelled cases of a data folder, either the ACDC layout (training/patientNNN/ with Info.cfg and
 * frame/_gt pairs) or a flat folder of X.nii.gz + X_gt.nii.gz pairs; structural problems become bad cases
 * rather than exceptions so the caller's --on-bad-case policy decides.
 */
import { join } from "node:path";
import { DataError, UserError } from "../errors.ts";
import { asInputError, InputError, readInputText } from "../io/safe_open.ts";
import type { Phase } from "./volume.ts";

/** One labelled volume on disk. */
export interface CaseFiles {
  id: string;
  patient: string;
  phase?: Phase;
  image: string;
  label: string;
}

/** A case that cannot be used, with the file and problem to show the user. */
export interface BadCase {
  id: string;
  patient: string;
  file: string;
  problem: string;
}

export interface Layout {
  kind: "acdc" | "pairs";
  /** The folder that holds the patient folders (ACDC) or the pairs. */
  root: string;
  cases: CaseFiles[];
  bad: BadCase[];
}

/** Info.cfg of an ACDC patient: ED and ES are 1-based frame numbers. */
export interface InfoCfg {
  ED: number;
  ES: number;
  nbFrame?: number;
  group?: string;
  entries: Record<string, string>;
}

/** Parses and validates Info.cfg ("key: value" lines); throws DataError naming the file and problem. */
export function parseInfoCfg(text: string, file: string): InfoCfg {
  const entries: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const m = /^\s*([A-Za-z][A-Za-z0-9_ ]*?)\s*[:=]\s*(.*?)\s*$/.exec(line);
    if (!m) {
      throw new DataError(
        `${file}: line ${i + 1}: expected "key: value", got ${JSON.stringify(line.slice(0, 40))}`,
      );
    }
    if (m[1] in entries) throw new DataError(`${file}: line ${i + 1}: ${m[1]} given twice`);
    entries[m[1]] = m[2];
  });
  const frame = (key: string, required: boolean): number | undefined => {
    const raw = entries[key];
    if (raw === undefined) {
      if (required) throw new DataError(`${file}: ${key}: missing`);
      return undefined;
    }
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1) {
      throw new DataError(`${file}: ${key}: ${JSON.stringify(raw)} is not a frame number >= 1`);
    }
    return n;
  };
  const ED = frame("ED", true)!;
  const ES = frame("ES", true)!;
  const nbFrame = frame("NbFrame", false);
  if (ED === ES) throw new DataError(`${file}: ED and ES are both frame ${ED}`);
  if (nbFrame !== undefined && (ED > nbFrame || ES > nbFrame)) {
    throw new DataError(`${file}: ED ${ED} / ES ${ES} beyond NbFrame ${nbFrame}`);
  }
  return { ED, ES, nbFrame, group: entries.Group, entries };
}

const NII = /\.nii(\.gz)?$/;
const FRAME = /^(.+)_frame(\d+)$/;

/** A folder's entries; `broken` holds entries that are neither a readable folder nor a possible case file. */
interface Listing {
  files: string[];
  dirs: string[];
  broken: { name: string; problem: string }[];
}

/** The problem of an I/O error on path, without the leading "<path>: " (a bug is rethrown). */
function ioProblem(path: string, err: unknown): string {
  const e = asInputError(path, err);
  if (!(e instanceof InputError)) throw err;
  return e.message.slice(path.length + 2);
}

/**
 * Lists dir. Symlinks are followed on purpose (a patient folder may be a link into another disk): a link to a
 * folder counts as a folder, a link to anything else as a file (the reader then checks it). A link that
 * cannot be followed (dangling, a loop, no permission) is a file when its name is one a case uses, so the
 * reader names it, and otherwise goes to `broken`, so the caller can name it instead of dropping it.
 */
async function listDir(dir: string): Promise<Listing> {
  const out: Listing = { files: [], dirs: [], broken: [] };
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new DataError(`${dir}: data folder not found`);
    if (err instanceof Deno.errors.NotADirectory) throw new DataError(`${dir}: not a folder`);
    throw new DataError(`${dir}: ${ioProblem(dir, err)}`);
  }
  for (const e of entries) {
    let isDir = e.isDirectory;
    if (e.isSymlink) {
      const target = join(dir, e.name);
      try {
        isDir = (await Deno.stat(target)).isDirectory;
      } catch (err) {
        const problem = ioProblem(target, err);
        if (e.name === "Info.cfg" || NII.test(e.name)) out.files.push(e.name);
        else out.broken.push({ name: e.name, problem: `symlink that cannot be followed: ${problem}` });
        continue;
      }
    }
    (isDir ? out.dirs : out.files).push(e.name);
  }
  out.files.sort();
  out.dirs.sort();
  return out;
}

/** stem -> file name, for image files (not _gt) and label files (_gt) among names. */
function niftiStems(names: string[]): { images: Map<string, string>; labels: Map<string, string> } {
  const images = new Map<string, string>();
  const labels = new Map<string, string>();
  for (const name of names) {
    if (!NII.test(name)) continue;
    const stem = name.replace(NII, "");
    if (stem.endsWith("_gt")) labels.set(stem.slice(0, -3), name);
    else if (!images.has(stem) || name.endsWith(".gz")) images.set(stem, name);
  }
  return { images, labels };
}

/** Phases from frame numbers when there is no Info.cfg: with two frames, the earlier is ED (ACDC's order). */
function phasesByFrameNumber(stems: string[]): Map<string, Phase> {
  const phases = new Map<string, Phase>();
  if (stems.length !== 2) return phases;
  const [a, b] = [...stems].sort((x, y) => Number(FRAME.exec(x)![2]) - Number(FRAME.exec(y)![2]));
  phases.set(a, "ED");
  phases.set(b, "ES");
  return phases;
}

/** The cases of one ACDC patient folder. */
async function patientCases(dir: string, patient: string, out: Layout): Promise<void> {
  const { files } = await listDir(dir);
  const { images, labels } = niftiStems(files);
  const frameStems = [...new Set([...images.keys(), ...labels.keys()])].filter((s) => FRAME.test(s)).sort();
  let wanted: { stem: string; phase?: Phase }[];
  if (files.includes("Info.cfg")) {
    const cfgPath = join(dir, "Info.cfg");
    let info: InfoCfg;
    try {
      info = parseInfoCfg(await readInputText(cfgPath, { maxBytes: 1 << 20, what: "Info.cfg" }), cfgPath);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      const problem = err.message.startsWith(`${cfgPath}: `)
        ? err.message.slice(cfgPath.length + 2)
        : err.message;
      out.bad.push({ id: patient, patient, file: cfgPath, problem });
      return;
    }
    wanted = (["ED", "ES"] as const).map((phase) => {
      const n = info[phase];
      const stem = frameStems.find((s) => Number(FRAME.exec(s)![2]) === n) ??
        `${patient}_frame${String(n).padStart(2, "0")}`;
      return { stem, phase };
    });
  } else {
    const phases = phasesByFrameNumber(frameStems);
    wanted = frameStems.map((stem) => ({ stem, phase: phases.get(stem) }));
    if (wanted.length === 0) {
      out.bad.push({
        id: patient,
        patient,
        file: dir,
        problem: "no Info.cfg and no <patient>_frameNN.nii.gz files",
      });
      return;
    }
  }
  for (const { stem, phase } of wanted) {
    const image = images.get(stem);
    const label = labels.get(stem);
    if (!image) {
      out.bad.push({ id: stem, patient, file: join(dir, `${stem}.nii.gz`), problem: "image file missing" });
    } else if (!label) {
      out.bad.push({
        id: stem,
        patient,
        file: join(dir, `${stem}_gt.nii.gz`),
        problem: "label file missing",
      });
    } else {
      out.cases.push({
        id: stem,
        patient,
        ...(phase ? { phase } : {}),
        image: join(dir, image),
        label: join(dir, label),
      });
    }
  }
}

/** Cases of a flat folder of X + X_gt pairs; "<p>_frameNN" stems group into patient p. */
function pairCases(root: string, files: string[], out: Layout): void {
  const { images, labels } = niftiStems(files);
  const byPatient = new Map<string, string[]>();
  for (const stem of new Set([...images.keys(), ...labels.keys()])) {
    const patient = FRAME.exec(stem)?.[1] ?? stem;
    byPatient.set(patient, [...(byPatient.get(patient) ?? []), stem]);
  }
  for (const [patient, stems] of [...byPatient].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const framed = stems.every((s) => FRAME.test(s)) ? phasesByFrameNumber(stems) : new Map<string, Phase>();
    for (const stem of stems.sort()) {
      const image = images.get(stem);
      const label = labels.get(stem);
      if (!image) {
        out.bad.push({
          id: stem,
          patient,
          file: join(root, label!),
          problem: `label file has no image ${stem}.nii.gz`,
        });
      } else if (!label) {
        out.bad.push({
          id: stem,
          patient,
          file: join(root, `${stem}_gt.nii.gz`),
          problem: "label file missing",
        });
      } else {
        const phase = framed.get(stem);
        out.cases.push({
          id: stem,
          patient,
          ...(phase ? { phase } : {}),
          image: join(root, image),
          label: join(root, label),
        });
      }
    }
  }
}

/**
 * Finds the cases under dir: dir/training/ (an ACDC release), dir itself holding patient folders, or dir
 * holding X + X_gt pairs. Throws DataError when none of these is there. A subfolder that cannot be listed
 * (no permission, say) or a link that cannot be followed is a bad case naming it, never silently left out,
 * since leaving a patient out changes the split.
 */
export async function discoverLayout(dir: string): Promise<Layout> {
  const top = await listDir(dir);
  const root = top.dirs.includes("training") ? join(dir, "training") : dir;
  const listing = root === dir ? top : await listDir(root);
  const patientDirs: string[] = [];
  const unreadable: BadCase[] = listing.broken.map(({ name, problem }) => ({
    id: name,
    patient: name,
    file: join(root, name),
    problem,
  }));
  for (const name of listing.dirs) {
    let inner: Listing;
    try {
      inner = await listDir(join(root, name));
    } catch (err) {
      if (!(err instanceof DataError)) throw err;
      const file = join(root, name);
      unreadable.push({ id: name, patient: name, file, problem: err.message.slice(file.length + 2) });
      continue;
    }
    if (
      inner.files.includes("Info.cfg") ||
      inner.files.some((f) => FRAME.test(f.replace(NII, "").replace(/_gt$/, "")))
    ) {
      patientDirs.push(name);
    }
  }
  if (patientDirs.length > 0) {
    const out: Layout = { kind: "acdc", root, cases: [], bad: unreadable };
    for (const name of patientDirs) await patientCases(join(root, name), name, out);
    return out;
  }
  const out: Layout = { kind: "pairs", root, cases: [], bad: unreadable };
  pairCases(root, listing.files, out);
  if (out.cases.length === 0 && out.bad.length === 0) {
    throw new DataError(
      `${dir}: no ACDC patient folders (training/patientNNN/) and no X.nii.gz + X_gt.nii.gz pairs`,
    );
  }
  return out;
}
