/** Prediction on a dropped NIfTI scan: per-class volumes, the scan slice by slice with labels, download. */
import { $, api, CLASSES, fmt, say, state } from "/common.js";

function predictUrl(query) {
  const w = $("weights").value;
  return `/api/runs/${encodeURIComponent(state.selected)}/predict?weights=${w}&${query}`;
}

const post = (query) =>
  api(predictUrl(query), {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: state.scan.bytes,
  });

async function showSlice(k) {
  const blob = await (await post(`format=png&slice=${k}`)).blob();
  const img = $("overlay");
  URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  await img.decode();
  img.dataset.slice = String(k);
  $("slice").value = String(k);
  $("slice-label").textContent = `slice ${k + 1} of ${state.scan.slices}`;
}

async function predictFile(file) {
  if (!state.selected) return say("predict-msg", "select a trained run first", true);
  say("predict-msg", `predicting ${file.name} with ${state.selected}…`);
  try {
    state.scan = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()), slices: 0 };
    const info = await (await post("format=json")).json();
    state.scan.slices = info.slices;
    $("volumes").replaceChildren(...CLASSES.map(([name, colour]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td><span class="swatch" style="background:${colour}"></span>${name}</td><td></td>`;
      tr.cells[1].textContent = `${fmt(info.volumes_ml[name], 1)} mL`;
      return tr;
    }));
    $("slice").max = String(info.slices - 1);
    $("viewer").hidden = false;
    await showSlice(Math.floor(info.slices / 2));
    say(
      "predict-msg",
      `${file.name}: ${info.dims.join(" × ")} voxels, ${fmt(info.voxel_ml * 1000, 2)} mm³ each`,
    );
  } catch (err) {
    say("predict-msg", err.message, true);
  }
}

const step = (d) => {
  const k = Number($("slice").value) + d;
  if (state.scan && k >= 0 && k < state.scan.slices) {
    showSlice(k).catch((e) => say("predict-msg", e.message, true));
  }
};
$("prev").onclick = () => step(-1);
$("next").onclick = () => step(1);
$("slice").oninput = () => step(0);
$("file").onchange = () => $("file").files[0] && predictFile($("file").files[0]);
$("drop").ondragover = (e) => (e.preventDefault(), $("drop").classList.add("over"));
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) predictFile(e.dataTransfer.files[0]);
};
$("download").onclick = async () => {
  try {
    const blob = await (await post("format=nifti")).blob();
    const a = Object.assign(document.createElement("a"), {
      href: URL.createObjectURL(blob),
      download: state.scan.name.replace(/\.nii(\.gz)?$/, "") + "_labels.nii" +
        (blob.type.includes("gzip") ? ".gz" : ""),
    });
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (err) {
    say("predict-msg", err.message, true);
  }
};
