/** Public API of sam-medseg: re-exports only. */
export { BindingLimitError, selectBackend } from "./pipeline/backend.ts";
export type { BackendChoice, BackendName } from "./pipeline/backend.ts";
export { tf } from "./pipeline/tf.ts";
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
export { openPth, readPth } from "./io/pth.ts";
export {
  CheckpointError,
  checkStrict,
  hfToOfficial,
  officialToHf,
  readStateDict,
  sha256File,
} from "./model/checkpoint.ts";
export { collect, fromIterable, map, pipe, take } from "./pipeline/pipe.ts";
export type { Source, Stage } from "./pipeline/pipe.ts";
export { prefetch } from "./pipeline/prefetch.ts";
export { Rng } from "./pipeline/rng.ts";
export { labelledSubset, splitPatients } from "./pipeline/splits.ts";
export type { FramesMode, LabelledSubset, Split } from "./pipeline/splits.ts";
export { DataError } from "./pipeline/data_error.ts";
export { DEFAULT_DATA_OPTIONS, resolveDataOptions } from "./pipeline/data_options.ts";
export type { DataConfig, DataOptions } from "./pipeline/data_options.ts";
export { buildDataset } from "./pipeline/dataset.ts";
export type {
  DataReport,
  Dataset,
  EvalPatient,
  EvalVolume,
  SplitRecord,
  VolumeInfo,
} from "./pipeline/dataset.ts";
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
export type { Phase, SliceItem, Volume } from "./stages/volume.ts";
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
export { generateAcdcPhantoms } from "./fixtures/phantom.ts";
export type { PhantomOptions } from "./fixtures/phantom.ts";
export { createLoraMedNet, LoraMedNet, LORAMEDNET_PRESETS, loraMedNetSpec } from "./model/loramednet.ts";
export type { BaseWeights, BuildOptions, LoraMedNetSpec } from "./model/loramednet.ts";
export type { Segmenter } from "./model/segmenter.ts";
export { initLora, loraParamCount, mergeLora, withLora } from "./model/lora.ts";
export { CNN_HEAD_VIT_B, cnnHead, cnnHeadParamCount, initCnnHead } from "./model/heads/cnn_head.ts";
export type { CnnHeadConfig } from "./model/heads/cnn_head.ts";
export { ceDiceLoss, crossEntropy, softDiceLoss } from "./model/losses.ts";
export { ConfigError, DEMO_DEFAULTS, PAPER_DEFAULTS, resolveConfig } from "./pipeline/config.ts";
export type { TrainConfig } from "./pipeline/config.ts";
export { Adam, LrSchedule } from "./pipeline/optimizer.ts";
export { loadCheckpoint, saveCheckpoint } from "./pipeline/run_dir.ts";
export type { TrainState } from "./pipeline/run_dir.ts";
export { ProgressReporter } from "./pipeline/progress.ts";
export type { DiceScores, TrainEvent } from "./pipeline/progress.ts";
export { runTraining } from "./pipeline/train_run.ts";
export { evaluateRun, openRun } from "./pipeline/eval_run.ts";
export { train, trainStep } from "./stages/train.ts";
export { evaluate, predictSlices } from "./stages/evaluate.ts";
export type { EvalResult } from "./stages/evaluate.ts";
export { dice, hd95 } from "./stages/metrics.ts";
export { predictFile, predictVolume } from "./stages/predict.ts";
export { loadSamConfig, parseSamConfig, PRESETS } from "./model/sam/config.ts";
export type { SamConfig } from "./model/sam/config.ts";
export { disposeParams, initSamParams, paramsFromStateDict, samParamShapes } from "./model/sam/params.ts";
export type { Params } from "./model/sam/params.ts";
export { imageEncoder } from "./model/sam/image_encoder.ts";
export { getDensePe, promptEncoder } from "./model/sam/prompt_encoder.ts";
export { maskDecoder } from "./model/sam/mask_decoder.ts";
export { twoWayTransformer } from "./model/sam/two_way_transformer.ts";
export { postprocessMasks, preprocess } from "./model/sam/preprocess.ts";
export { runSam } from "./model/sam/sam.ts";
export { attention } from "./model/attention.ts";
