/**
 * Registers tfjs's gradient functions, which tfjs-core alone does not ship: the union package's bundle
 * registers them into tfjs's global gradient registry, shared with the engine of pipeline/tf.ts. Import
 * this module (for its side effect) wherever tf.grads / tf.variableGrads runs.
 */
import { tf } from "../pipeline/tf.ts";
import "@tensorflow/tfjs";

export { tf };
