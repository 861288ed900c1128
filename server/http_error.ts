/**
 * How a user error becomes an HTTP answer: HttpError carries its own status, the other UserError kinds map
 * by class (bad NIfTI, options or volume: 422; a run whose files cannot be used: 409; anything else: 400).
 */
import { ConfigError, DataError, UserError } from "../errors.ts";
import { NiftiError } from "../io/nifti.ts";
import { SafetensorsError } from "../io/safetensors.ts";
import { BindingLimitError } from "../engine/backend.ts";
import { CheckpointError } from "../model/checkpoint.ts";

/** A user error with the status and short description the answer should carry. */
export class HttpError extends UserError {
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 413 | 415 | 422 | 503,
    readonly error: string,
    detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

/** Status and short description of a user error, by kind. */
const KINDS: [new (...a: never[]) => UserError, number, string][] = [
  [NiftiError, 422, "invalid NIfTI"],
  [DataError, 422, "unusable volume"],
  [ConfigError, 422, "invalid options"],
  [BindingLimitError, 422, "too large for the device"],
  [CheckpointError, 409, "the run cannot be used"],
  [SafetensorsError, 409, "the run cannot be used"],
];

/** The JSON error body and status for a user error. */
export function errorAnswer(err: UserError): {
  status: number;
  body: { error: string; detail: string };
  headers: Record<string, string>;
} {
  if (err instanceof HttpError) {
    return { status: err.status, body: { error: err.error, detail: err.message }, headers: err.headers };
  }
  const kind = KINDS.find(([cls]) => err instanceof cls);
  return {
    status: kind?.[1] ?? 400,
    body: { error: kind?.[2] ?? "bad request", detail: err.message },
    headers: {},
  };
}
