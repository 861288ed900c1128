/**
 * The one base class of every user-facing error, and the two kinds that belong to no single file format.
 *
 * A UserError means "the input was bad", not "the program is wrong": the CLI prints its one-line message and
 * exits 2, the server answers it as a 4xx JSON body. Both recognise it with `instanceof`, so a new kind of
 * bad input only has to extend this class (NiftiError, PickleError, SafetensorsError, CheckpointError and
 * BindingLimitError live beside the code that throws them). Anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An option value or combination the program cannot run with (a flag, a --config file, a run request). */
export class ConfigError extends UserError {}

/** A data set the stages cannot use (a bad case, a split that cannot be made), naming the file or setting. */
export class DataError extends UserError {}

/**
 * A name read from an untrusted file (a zip entry, a tensor key), as a message shows it: in double quotes with
 * control characters escaped, so a crafted name cannot break the one-line message, and cut at 80 characters.
 */
export function quoted(name: string): string {
  const cut = name.length > 80 ? `${name.slice(0, 77)}...` : name;
  // JSON escapes C0 controls but leaves the Unicode line and paragraph separators, which break lines too.
  return JSON.stringify(cut).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** A name from an untrusted file as it is when short and free of control characters, else quoted(name). */
export function printable(name: string): string {
  // deno-lint-ignore no-control-regex
  return name.length > 80 || /[\x00-\x1f\x7f\u2028\u2029]/.test(name) ? quoted(name) : name;
}
