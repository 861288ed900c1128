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
