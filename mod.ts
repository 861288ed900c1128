/**
 * Public API of sam-medseg: re-exports only, floor by floor from the bottom (errors, io, engine, model,
 * stages, pipeline, server), as docs/architecture.md describes them. Command-line entry points, benchmarks and the
 * fixture generator are not part of it.
 */

// errors: the one base class of user-facing errors
export { ConfigError, DataError, UserError } from "./errors.ts";

// io: file formats
export {
  bestAffine,
  decodeNifti,
  encodeNifti,
  geometryFromAffine,
  NiftiError,
  qformAffine,
  readNifti,
  readNiftiBytes,
  writeNifti,
} from "./io/nifti.ts";
export type { NiftiGeometry, NiftiStats, NiftiVolume, ReadNiftiOptions } from "./io/nifti.ts";
export { fromFloat32, hostTensor, toFloat32 } from "./io/host_tensor.ts";
export type { HostData, HostDtype, HostTensor } from "./io/host_tensor.ts";
export {
  decodeSafetensors,
  decodeSafetensorsWithMetadata,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  readSafetensorsWithMetadata,
  SafetensorsError,
  writeSafetensors,
} from "./io/safetensors.ts";
export { PickleError } from "./io/pickle.ts";
export { checkWritable, OutputError, prepareOutputDir, writeOutput } from "./io/safe_output.ts";
export type { OutputOptions } from "./io/safe_output.ts";
export { openPth, readPth } from "./io/pth.ts";

// engine: tfjs, backends and device limits, randomness, optimisation
export { tf } from "./engine/tf.ts";
export { bindingLimit, BindingLimitError, selectBackend } from "./engine/backend.ts";
export type { BackendChoice, BackendName } from "./engine/backend.ts";
export { Rng } from "./engine/rng.ts";
export { Adam, LrSchedule } from "./engine/optimizer.ts";

// model: SAM, LoRA, heads, losses, checkpoints, the Segmenter interface
export { loadSamConfig, parseSamConfig, PRESETS } from "./model/sam/config.ts";
export type { SamConfig } from "./model/sam/config.ts";
export { disposeParams, initSamParams, paramsFromStateDict, samParamShapes } from "./model/sam/params.ts";
export type { Params } from "./model/sam/params.ts";
export { encoderLimits, imageEncoder } from "./model/sam/image_encoder.ts";
export type { EncoderOptions } from "./model/sam/image_encoder.ts";
export { getDensePe, promptEncoder } from "./model/sam/prompt_encoder.ts";
export { maskDecoder } from "./model/sam/mask_decoder.ts";
export { twoWayTransformer } from "./model/sam/two_way_transformer.ts";
export { postprocessMasks, preprocess } from "./model/sam/preprocess.ts";
export { runSam } from "./model/sam/sam.ts";
export { attention } from "./model/attention.ts";
export {
  CheckpointError,
  checkStrict,
  hfToOfficial,
  officialToHf,
  readStateDict,
  sha256File,
} from "./model/checkpoint.ts";
export { initLora, loraParamCount, mergeLora, withLora } from "./model/lora.ts";
export { CNN_HEAD_VIT_B, cnnHead, cnnHeadParamCount, initCnnHead } from "./model/heads/cnn_head.ts";
export type { CnnHeadConfig } from "./model/heads/cnn_head.ts";
export { ceDiceLoss, crossEntropy, sigmoidBceDiceLoss, softDiceLoss } from "./model/losses.ts";
export type { Segmenter } from "./model/segmenter.ts";
export { createLoraMedNet, LoraMedNet, LORAMEDNET_PRESETS, loraMedNetSpec } from "./model/loramednet.ts";
export type { BuildOptions, LoraMedNetSpec } from "./model/loramednet.ts";
export { encoderSizeOf, loadSamWeights } from "./model/sam_weights.ts";
export type { BaseWeights } from "./model/sam_weights.ts";
export { createVitHead, VitHead, vitHeadParamCounts, vitHeadSpec } from "./model/vit_head.ts";
export { createSamed, Samed, samedParamCounts, samedSpec } from "./model/samed.ts";
export { createSegmenter, METHOD_NAMES, methodParamCounts } from "./model/methods.ts";
export type { MethodName, MethodOptions } from "./model/methods.ts";
export { createGNet, GNet, GNET_PRESETS, gnetParamCounts, gnetSpec } from "./model/gnet.ts";
export type { GNetBuildOptions, GNetSpec } from "./model/gnet.ts";
export { hardnet, HARDNET85, HARDNET85_TO_16, loadHardnetStateDict } from "./model/heads/hardnet.ts";
export type { HarDNetConfig } from "./model/heads/hardnet.ts";

// stages: the Stage type and its composition, then the stages in data-flow order
export { collect, fromIterable, map, pipe, take } from "./stages/pipe.ts";
export type { Source, Stage } from "./stages/pipe.ts";
export { prefetch } from "./stages/prefetch.ts";
export { CLASS_NAMES, NUM_CLASSES } from "./stages/volume.ts";
export type { EvalPatient, EvalVolume, Phase, SliceItem, Volume } from "./stages/volume.ts";
export { discoverLayout, parseInfoCfg } from "./stages/acdc_layout.ts";
export type { BadCase, CaseFiles, Layout } from "./stages/acdc_layout.ts";
export { loadVolume, loadVolumes } from "./stages/load.ts";
export type { OnBadCase } from "./stages/load.ts";
export { normalize, toOriginalGrid, toOriginalVolume, volumeSlices } from "./stages/normalize.ts";
export type { Normalization } from "./stages/normalize.ts";
export { augment, augmentSlice, DEFAULT_AUGMENT, resolveAugment } from "./stages/augment.ts";
export type { AugmentConfig, AugmentOptions } from "./stages/augment.ts";
export { batch, disposeBatch, makeBatch, stackSlices } from "./stages/batch.ts";
export type { Batch } from "./stages/batch.ts";
export { train, trainStep } from "./stages/train.ts";
export type { TrainData, TrainOptions } from "./stages/train.ts";
export { memorySink } from "./stages/train_sink.ts";
export type { Checkpoint, TrainSink, TrainState } from "./stages/train_sink.ts";
export type { DiceScores, TrainEvent } from "./stages/train_events.ts";
export { predictSlices } from "./stages/predict_slices.ts";
export { evaluate } from "./stages/evaluate.ts";
export type { EvalResult } from "./stages/evaluate.ts";
export { dice, hd95 } from "./stages/metrics.ts";
export { predictFile, predictVolume } from "./stages/predict.ts";

// pipeline: options, data set assembly, splits, runs
export {
  DATA_OPTIONS,
  dataOptions,
  DEMO_DEFAULTS,
  PAPER_DEFAULTS,
  resolveConfig,
  TRAIN_OPTIONS,
} from "./pipeline/config.ts";
export type { DataOptions, TrainConfig } from "./pipeline/config.ts";
export { labelledSubset, splitPatients } from "./pipeline/splits.ts";
export type { FramesMode, LabelledSubset, Split } from "./pipeline/splits.ts";
export { buildDataset } from "./pipeline/dataset.ts";
export type { DataReport, Dataset, SplitRecord, VolumeInfo } from "./pipeline/dataset.ts";
export {
  loadCheckpoint,
  prepareRunDir,
  recoverCheckpoint,
  runDirSink,
  saveCheckpoint,
} from "./pipeline/run_dir.ts";
export { ProgressReporter } from "./pipeline/progress.ts";
export { runTraining } from "./pipeline/train_run.ts";
export { evaluateRun, openRun } from "./pipeline/eval_run.ts";
export { gridCells, runCell } from "./pipeline/table.ts";
export type { Cell, CellResult, GridOptions } from "./pipeline/table.ts";
export { tableRows, writeTable } from "./pipeline/table_report.ts";
export { PAPER_TABLE_1 } from "./pipeline/paper_table.ts";

// server: the HTTP API and web page as a Hono app (deno task serve wraps it in Deno.serve)
export { createApp } from "./server/app.ts";
export type { AppDeps } from "./server/app.ts";
export { Trainer } from "./server/trainer.ts";
export { ModelCache } from "./server/model_cache.ts";
export { PredictGate } from "./server/predict_gate.ts";
