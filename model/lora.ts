/**
 * LoRA on SAM's image encoder as SAMed does it: rank-r adapters on the q and v slices of every block's qkv
 * projection (A Kaiming-uniform, B zero, no alpha/r scaling), trained while the base weights stay frozen,
 * and merged into plain qkv weights for inference.
 */
import { tf } from "../engine/tf.ts";
import type { Rng } from "../engine/rng.ts";
import type { SamConfig } from "./sam/config.ts";
import type { Params } from "./sam/layers.ts";

const prefix = (i: number) => `image_encoder.blocks.${i}.attn`;

/** The adapter names of block i, in the form the image encoder looks for. */
export function loraNames(i: number): { qA: string; qB: string; vA: string; vB: string } {
  const p = prefix(i);
  return { qA: `${p}.lora_q_A`, qB: `${p}.lora_q_B`, vA: `${p}.lora_v_A`, vB: `${p}.lora_v_B` };
}

/** Trainable values: depth x 2 (q, v) x 2 (A, B) x C x r (147,456 for ViT-B at r = 4). */
export function loraParamCount(cfg: Pick<SamConfig, "depth" | "embed_dim">, rank: number): number {
  return cfg.depth * 4 * cfg.embed_dim * rank;
}

/**
 * Fresh adapters: A [r, C] ~ U(+-1/sqrt(C)) (torch Linear's kaiming_uniform(a=sqrt(5))), B [C, r] = 0, so the
 * adapted encoder starts exactly equal to the base one. Returned as trainable tf.Variables keyed by name.
 */
export function initLora(
  cfg: Pick<SamConfig, "depth" | "embed_dim">,
  rank: number,
  rng: Rng,
): Map<string, tf.Variable> {
  if (!Number.isInteger(rank) || rank < 1) {
    throw new RangeError(`LoRA rank must be an integer >= 1, got ${rank}`);
  }
  const c = cfg.embed_dim;
  const bound = 1 / Math.sqrt(c);
  const vars = new Map<string, tf.Variable>();
  for (let i = 0; i < cfg.depth; i++) {
    const n = loraNames(i);
    for (const [a, b] of [[n.qA, n.qB], [n.vA, n.vB]]) {
      const values = new Float32Array(rank * c);
      for (let k = 0; k < values.length; k++) values[k] = rng.uniform(-bound, bound);
      // tidy frees the initial tensors that tf.variable copies from.
      vars.set(a, tf.tidy(() => tf.variable(tf.tensor2d(values, [rank, c]), true)));
      vars.set(b, tf.tidy(() => tf.variable(tf.zeros([c, rank]), true)));
    }
  }
  return vars;
}

/** The base parameters plus the adapters (a new map sharing every tensor; nothing to dispose). */
export function withLora(base: Params, lora: ReadonlyMap<string, tf.Tensor>): Params {
  const out: Params = new Map(base);
  for (const [k, v] of lora) out.set(k, v);
  return out;
}

/**
 * Plain encoder weights with the adapters folded in: qkv.weight [3C, C] gets B_q A_q added to its first C
 * rows (q) and B_v A_v to its last C rows (v); k is untouched. Returns a new map in which only the merged
 * qkv weights are new tensors (`created`, for the caller to dispose); every other entry is shared with base.
 */
export function mergeLora(
  base: Params,
  lora: ReadonlyMap<string, tf.Tensor>,
  depth: number,
): { params: Params; created: tf.Tensor[] } {
  const params: Params = new Map(base);
  const created: tf.Tensor[] = [];
  for (let i = 0; i < depth; i++) {
    const n = loraNames(i);
    const key = `${prefix(i)}.qkv.weight`;
    const w = base.get(key);
    const [qA, qB, vA, vB] = [n.qA, n.qB, n.vA, n.vB].map((k) => lora.get(k));
    if (!w || !qA || !qB || !vA || !vB) throw new Error(`mergeLora: block ${i} lacks ${key} or its adapters`);
    const merged = tf.tidy(() => {
      const c = w.shape[1]!;
      const dq = tf.matMul(qB as tf.Tensor2D, qA as tf.Tensor2D); // [C, C]
      const dv = tf.matMul(vB as tf.Tensor2D, vA as tf.Tensor2D); // [C, C]
      const [q, k, v] = tf.split(w, [c, c, c], 0);
      return tf.concat([tf.add(q, dq), k, tf.add(v, dv)], 0); // [3C, C]
    });
    params.set(key, merged);
    created.push(merged);
  }
  return { params, created };
}
