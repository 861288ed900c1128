/**
 * The wall time of the paper's recipe, estimated from measured step and forward times, so a user with one
 * GPU knows before starting whether a Table 1 grid is an afternoon or a week. The figures it needs are what
 * bench/gpu.sh measures; the recipe numbers are the paper's (docs/methods.md, docs/data.md).
 */

export interface Recipe {
  epochs: number;
  trainPatients: number;
  framesPerPatient: number;
  slicesPerFrame: number;
  valPatients: number;
  testPatients: number;
  batch: number;
  cells: number;
  seeds: number;
}

/** The recipe and data shape the estimate assumes (ACDC, 5 labelled patients, 70/15/15 split of 100). */
export const PAPER_RECIPE: Recipe = {
  epochs: 120,
  trainPatients: 5,
  /** Labelled frames per patient (ED and ES). */
  framesPerPatient: 2,
  /** ACDC's short-axis stacks hold about 6 to 21 slices; 10 is a typical count. */
  slicesPerFrame: 10,
  valPatients: 15,
  testPatients: 15,
  batch: 4,
  /** Methods x weight sets of Table 1, and the seeds each cell is repeated over. */
  cells: 8,
  seeds: 3,
};

export interface TableEstimate {
  stepsPerEpoch: number;
  /** Seconds of one epoch: its training steps plus a validation pass through the encoder. */
  epochS: number;
  /** Seconds of one cell: every epoch, then the test pass. */
  cellS: number;
  /** Seconds of the whole grid (cells x seeds), run one after another on one device. */
  gridS: number;
  /** Hours of the same, rounded to 0.1. */
  cellH: number;
  gridH: number;
}

/**
 * stepS: one LoRaMedNet training step at the recipe's batch; forwardS: one encoder forward at that batch.
 * Validation is charged a full encoder forward per batch every epoch, as LoRaMedNet and SAMed need (their
 * encoder changes); the frozen-encoder methods reuse cached validation embeddings and train without the
 * encoder's backward, so for them this is an upper bound.
 */
export function tableEstimate(stepS: number, forwardS: number, r = PAPER_RECIPE): TableEstimate {
  if (!(stepS > 0 && forwardS > 0)) throw new RangeError(`need positive times, got ${stepS} and ${forwardS}`);
  const batches = (patients: number) => Math.ceil(patients * r.framesPerPatient * r.slicesPerFrame / r.batch);
  const stepsPerEpoch = batches(r.trainPatients);
  const epochS = stepsPerEpoch * stepS + batches(r.valPatients) * forwardS;
  const cellS = r.epochs * epochS + batches(r.testPatients) * forwardS;
  const gridS = cellS * r.cells * r.seeds;
  const h = (s: number) => Math.round(s / 360) / 10;
  return { stepsPerEpoch, epochS, cellS, gridS, cellH: h(cellS), gridH: h(gridS) };
}
