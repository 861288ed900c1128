/**
 * The shell around every command-line entry point (cli/, bench/): a UserError becomes one line on stderr
 * and exit code 2; anything else keeps its stack and exits 1.
 */
import { UserError } from "../errors.ts";

/** Runs a CLI entry point; use as `if (import.meta.main) runCli(main)`. */
export async function runCli(main: (args: string[]) => Promise<void> | void): Promise<void> {
  try {
    await main(Deno.args);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`error: ${err.message.split("\n").join(" ")}`);
      Deno.exit(2);
    }
    throw err;
  }
}
