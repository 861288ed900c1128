/**
 * SAM's TwoWayTransformer (transformer.py): tokens and image attend to each other in turn. Exported with a
 * key prefix because the ViT head and the g-network reuse it outside the mask decoder.
 */
import { tf } from "../../engine/tf.ts";
import { attention } from "../attention.ts";
import { layerNorm, linear, param, type Params } from "./layers.ts";

/** nn.LayerNorm's default eps (the decoder does not pass one, unlike the encoder). */
const EPS = 1e-5;

export interface TwoWayTransformerOptions {
  /** Number of TwoWayAttentionBlocks (2 in SAM). */
  depth: number;
  numHeads: number;
}

/** Tiles batch-1 tensors to the largest batch, as torch's matmul broadcasting does for the batch-1 token quirk. */
function sameBatch(ts: tf.Tensor3D[]): tf.Tensor3D[] {
  const n = Math.max(...ts.map((t) => t.shape[0]));
  return ts.map((t) => {
    if (t.shape[0] === n) return t;
    if (t.shape[0] !== 1) {
      throw new Error(`two-way transformer: batches ${ts.map((x) => x.shape[0])} do not broadcast`);
    }
    return tf.tile(t, [n, 1, 1]) as tf.Tensor3D;
  });
}

/** Splits [B, N, heads*d] into [B*heads, N, d]. */
function separateHeads(x: tf.Tensor, heads: number): tf.Tensor3D {
  const [b, n, c] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, n, heads, c / heads]), [0, 2, 1, 3]), [
    b * heads,
    n,
    c / heads,
  ]) as tf.Tensor3D;
}

/** transformer.Attention: project (with optional downsampling), multi-head attention, project back. */
export function decoderAttention(
  p: Params,
  pre: string,
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
) {
  const proj = (x: tf.Tensor, n: string) =>
    linear(x, param(p, `${pre}.${n}.weight`), param(p, `${pre}.${n}.bias`));
  const qp = proj(q, "q_proj") as tf.Tensor3D,
    kp = proj(k, "k_proj") as tf.Tensor3D,
    vp = proj(v, "v_proj") as tf.Tensor3D;
  const [qb, kb, vb] = sameBatch([qp, kp, vp]);
  const [b, nq, internal] = qb.shape;
  const d = internal / heads;
  const o = attention(separateHeads(qb, heads), separateHeads(kb, heads), separateHeads(vb, heads), {
    scale: 1 / Math.sqrt(d),
  }); // [B*heads, Nq, d]
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [b, heads, nq, d]), [0, 2, 1, 3]), [b, nq, internal]);
  return proj(merged, "out_proj") as tf.Tensor3D;
}

function norm(p: Params, pre: string, x: tf.Tensor): tf.Tensor3D {
  return layerNorm(x, param(p, `${pre}.weight`), param(p, `${pre}.bias`), EPS) as tf.Tensor3D;
}

/** One TwoWayAttentionBlock; layer 0 skips the PE in its self-attention and has no residual there. */
function attentionBlock(
  p: Params,
  pre: string,
  queries: tf.Tensor3D,
  keys: tf.Tensor3D,
  queryPe: tf.Tensor3D,
  keyPe: tf.Tensor3D,
  heads: number,
  skipFirstLayerPe: boolean,
): [tf.Tensor3D, tf.Tensor3D] {
  if (skipFirstLayerPe) {
    queries = decoderAttention(p, `${pre}.self_attn`, queries, queries, queries, heads);
  } else {
    const q = tf.add(queries, queryPe) as tf.Tensor3D;
    queries = tf.add(queries, decoderAttention(p, `${pre}.self_attn`, q, q, queries, heads)) as tf.Tensor3D;
  }
  queries = norm(p, `${pre}.norm1`, queries);

  const kWithPe = tf.add(keys, keyPe) as tf.Tensor3D;
  let q = tf.add(queries, queryPe) as tf.Tensor3D;
  queries = tf.add(
    queries,
    decoderAttention(p, `${pre}.cross_attn_token_to_image`, q, kWithPe, keys, heads),
  ) as tf.Tensor3D;
  queries = norm(p, `${pre}.norm2`, queries);

  const hidden = tf.relu(
    linear(queries, param(p, `${pre}.mlp.lin1.weight`), param(p, `${pre}.mlp.lin1.bias`)),
  );
  queries = tf.add(
    queries,
    linear(hidden, param(p, `${pre}.mlp.lin2.weight`), param(p, `${pre}.mlp.lin2.bias`)),
  ) as tf.Tensor3D;
  queries = norm(p, `${pre}.norm3`, queries);

  q = tf.add(queries, queryPe) as tf.Tensor3D;
  keys = tf.add(
    keys,
    decoderAttention(p, `${pre}.cross_attn_image_to_token`, kWithPe, q, queries, heads),
  ) as tf.Tensor3D;
  keys = norm(p, `${pre}.norm4`, keys);
  return [queries, keys];
}

/**
 * TwoWayTransformer.forward over params under prefix (e.g. "mask_decoder.transformer"):
 * image [Bi, h, w, C] (NHWC), imagePe [Bi or 1, h, w, C], tokens [Bt, T, C] -> {queries [B, T, C], keys
 * [B, h*w, C]} where B = max(Bi, Bt) and a batch of 1 broadcasts against the other (torch's matmul rule).
 */
export function twoWayTransformer(
  p: Params,
  prefix: string,
  opts: TwoWayTransformerOptions,
  image: tf.Tensor4D,
  imagePe: tf.Tensor4D,
  tokens: tf.Tensor3D,
): { queries: tf.Tensor3D; keys: tf.Tensor3D } {
  return tf.tidy(() => {
    const [bi, h, w, c] = image.shape;
    const imageFlat = tf.reshape(image, [bi, h * w, c]) as tf.Tensor3D; // [Bi, hw, C]
    const peFlat = tf.reshape(imagePe, [imagePe.shape[0], h * w, c]) as tf.Tensor3D;
    let queries = tokens;
    let keys = imageFlat;
    for (let i = 0; i < opts.depth; i++) {
      [queries, keys] = attentionBlock(
        p,
        `${prefix}.layers.${i}`,
        queries,
        keys,
        tokens,
        peFlat,
        opts.numHeads,
        i === 0,
      );
    }
    const q = tf.add(queries, tokens) as tf.Tensor3D;
    const k = tf.add(keys, peFlat) as tf.Tensor3D;
    const out = decoderAttention(p, `${prefix}.final_attn_token_to_image`, q, k, keys, opts.numHeads);
    queries = norm(p, `${prefix}.norm_final_attn`, tf.add(queries, out));
    return { queries, keys };
  });
}
