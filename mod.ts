/** Public API of sam-medseg: re-exports only. */
export { BindingLimitError, selectBackend } from "./pipeline/backend.ts";
export type { BackendChoice, BackendName } from "./pipeline/backend.ts";
export { tf } from "./pipeline/tf.ts";
