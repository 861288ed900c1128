/**
 * The contract between a segmentation method and the train / evaluate / predict stages, so other methods
 * (ViT head, g-network, SAMed) plug in beside LoRaMedNet without touching the stages.
 */
import type { tf } from "../engine/tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";

export interface Segmenter {
  /** "loramednet", "cnn-head", ... */
  readonly method: string;
  /** The architecture as built (recorded in a run's config.json). */
  readonly spec: object;
  readonly numClasses: number;
  /** Side of the square input and output grid (224 in the paper). */
  readonly imageSize: number;
  /** The trainable variables, keyed by their checkpoint names. */
  readonly trainable: ReadonlyMap<string, tf.Variable>;
  /** Trainable and frozen parameter counts (what --dry-run prints). */
  counts(): { trainable: number; frozen: number };
  /**
   * x [B, S, S, 3] -> logits [B, S, S, numClasses] (argmax = the predicted label); differentiable with respect
   * to `trainable`. `training` is true inside a training step, for layers that behave differently there
   * (BatchNorm uses the batch's statistics and updates its running ones).
   */
  forward(x: tf.Tensor4D, training?: boolean): tf.Tensor4D;
  /**
   * Present only where the image encoder never trains (cnn-head, vit-head, gnet): x [B, S, S, 3] -> the
   * frozen encoder's embedding [B, g, g, C], a function of x alone. With decode, forward(x, t) equals
   * decode(x, encode(x), t), so evaluation can keep the embeddings of slices it sees every epoch instead of
   * running the ViT-B encoder (most of the compute) on them again.
   */
  readonly encode?: (x: tf.Tensor4D) => tf.Tensor4D;
  /** The rest of forward from x and encode(x) (present exactly when encode is). */
  readonly decode?: (x: tf.Tensor4D, embedding: tf.Tensor4D, training?: boolean) => tf.Tensor4D;
  /** The method's own training loss on forward's logits, where it is not CE + soft Dice (the g-network). */
  readonly loss?: (logits: tf.Tensor, labels: tf.Tensor) => tf.Scalar;
  /**
   * Switches forward to inference weights (e.g. LoRA merged into plain qkv weights); training afterwards is
   * an error. Idempotent.
   */
  merge(): void;
  /** Trainable weights in their portable layouts (PyTorch's), for trainable.safetensors. */
  exportTrainable(): Promise<Map<string, HostTensor>>;
  /** Loads weights written by exportTrainable; file names the source in errors (CheckpointError). */
  importTrainable(tensors: ReadonlyMap<string, HostTensor>, file: string): void;
  dispose(): void;
}

/** Rejects an input that is not [B, size, size, 3]: a programming error, not a user one. */
export function checkInput(method: string, x: tf.Tensor, size: number): void {
  if (x.rank !== 4 || x.shape[1] !== size || x.shape[2] !== size || x.shape[3] !== 3) {
    throw new Error(`${method}: input [${x.shape}] is not [B, ${size}, ${size}, 3]`);
  }
}
