/**
 * UserError marks a problem with the user's input (a bad file or flag): the CLI prints its one-line message
 * and exits 2, with no stack trace. Anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** Errors whose message alone is what the user needs (any class named *Error that marks bad input). */
const USER_ERROR_NAMES = new Set([
  "UserError",
  "NiftiError",
  "PickleError",
  "SafetensorsError",
  "CheckpointError",
  "ConfigError",
  "DataError",
  "BindingLimitError",
]);

/** True when err is a user error: print its message, exit 2. */
export function isUserError(err: unknown): err is Error {
  return err instanceof Error && USER_ERROR_NAMES.has(err.name);
}

/**
 * Runs a CLI entry point: user errors become one line on stderr and exit code 2; other errors keep their
 * stack and exit 1. Use as `if (import.meta.main) runCli(main)`.
 */
export async function runCli(main: (args: string[]) => Promise<void> | void): Promise<void> {
  try {
    await main(Deno.args);
  } catch (err) {
    if (isUserError(err)) {
      console.error(`error: ${err.message.split("\n").join(" ")}`);
      Deno.exit(2);
    }
    throw err;
  }
}
