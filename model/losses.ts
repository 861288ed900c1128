/**
 * Training losses: the Hu et al. code's, which LoRaMedNet inherits (cross-entropy plus their soft Dice: batch
 * Dice over foreground classes, squared denominators, smooth 1, zero terms dropped, weights 1:1), and the
 * g-network's per-class sigmoid BCE + soft Dice.
 */
import { tf } from "../engine/tf.ts";

/** Mean multi-class cross-entropy: logits [..., C], labels int32 [...] -> scalar. */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const c = logits.shape[logits.shape.length - 1];
    const lp = tf.reshape(tf.logSoftmax(tf.reshape(logits, [-1, c])), [-1, c]); // [N, C]
    const onehot = tf.oneHot(tf.reshape(labels, [-1]) as tf.Tensor1D, c); // [N, C]
    return tf.neg(tf.mean(tf.sum(tf.mul(lp, onehot), -1)));
  });
}

type Args = Array<tf.Tensor | tf.GradSaveFunc>;

/** Mean of the strictly positive entries (0 when none), as torch's result[result > 0].mean(). */
const meanOfPositive = tf.customGrad<tf.Tensor>((...args: Args) => {
  const [terms, save] = args as [tf.Tensor1D, tf.GradSaveFunc];
  const mask = tf.cast(tf.greater(terms, 0), "float32"); // [K]
  const count = tf.maximum(tf.sum(mask), 1);
  save([mask, count]);
  return {
    value: tf.div(tf.sum(tf.mul(terms, mask)), count),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.div(tf.mul(dy, saved[0]), saved[1])],
  };
});

/**
 * Hu's SoftDiceLoss(batch_dice=True, do_bg=False) on softmax probabilities: per foreground class c, summed over
 * batch and pixels, 1 - (2 sum p*y + 1) / (sum p^2 + sum y^2 + 1); classes whose term is not > 0 are dropped
 * (so an absent class predicted perfectly does not dilute the mean), the rest averaged.
 * probs [..., C], labels int32 [...] -> scalar.
 */
export function softDiceLoss(probs: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const c = probs.shape[probs.shape.length - 1];
    const p = tf.slice(tf.reshape(probs, [-1, c]), [0, 1], [-1, c - 1]); // [N, C-1]
    const y = tf.slice(tf.oneHot(tf.reshape(labels, [-1]) as tf.Tensor1D, c), [0, 1], [-1, c - 1]); // [N, C-1]
    const inter = tf.sum(tf.mul(p, y), 0); // [C-1]
    const denom = tf.add(tf.add(tf.sum(tf.square(p), 0), tf.sum(y, 0)), 1); // y^2 = y for one-hot
    const terms = tf.sub(1, tf.div(tf.add(tf.mul(inter, 2), 1), denom)); // [C-1]
    return meanOfPositive(terms) as tf.Scalar;
  });
}

/** CE + soft Dice (1:1), the LoRaMedNet / CNN-head training loss: logits [B, H, W, C], labels [B, H, W]. */
export function ceDiceLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.add(crossEntropy(logits, labels), softDiceLoss(tf.softmax(logits), labels)));
}

/**
 * The g-network's loss (docs/methods.md decision 6), on logits [B, H, W, C] whose channel 0 (background) is
 * ignored and labels int32 [B, H, W]: for each foreground class c, with p = sigmoid(logit c) and y = [label =
 * c], binary cross-entropy (mean over pixels) plus the original code's soft Dice, 1 - (sum p*y + 1) /
 * ((sum p + sum y) / 2 + 1) per sample (its Tversky index with alpha = beta = 0.5, smooth 1, not squared),
 * averaged over samples; both averaged over classes and added.
 */
export function sigmoidBceDiceLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [b, c] = [logits.shape[0], logits.shape[logits.shape.length - 1]];
    const l = tf.slice(tf.reshape(logits, [b, -1, c]), [0, 0, 1], [-1, -1, c - 1]); // [B, N, C-1]
    // A float32 one-hot, cast from the int32 one: int32 sums mixed into float maths came out wrong on webgpu
    // (lavapipe), and tfjs-backend-wasm 4.22's OneHot ignores the dtype argument, writing the int32 bit pattern
    // of 1 into a float32 buffer (1.4e-45): with tf.oneHot(..., "float32") every target read as background on
    // wasm and the g-network learned to predict nothing (docs/methods.md 2.3).
    const onehot = tf.cast(tf.oneHot(tf.reshape(labels, [b, -1]) as tf.Tensor2D, c), "float32"); // [B, N, C]
    const y = tf.slice(onehot, [0, 0, 1], [-1, -1, c - 1]); // [B, N, C-1]
    // -(y log p + (1 - y) log(1 - p)) = softplus(l) - l y, exact for any logit.
    const bce = tf.mean(tf.sub(tf.softplus(l), tf.mul(l, y)));
    const p = tf.sigmoid(l);
    const tp = tf.sum(tf.mul(p, y), 1); // [B, C-1]
    const half = tf.mul(tf.add(tf.sum(p, 1), tf.sum(y, 1)), 0.5);
    const dice = tf.mean(tf.sub(1, tf.div(tf.add(tp, 1), tf.add(half, 1))));
    return tf.add(bce, dice) as tf.Scalar;
  });
}
