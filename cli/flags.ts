/** Flag parsing for every CLI entry point: node:util parseArgs in strict mode, with errors as UserError. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UserError } from "./user_error.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses args strictly (unknown flags and missing values are user errors, exit 2). */
export function parseFlags<O extends Options>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

/** A numeric flag, checked: `--epochs abc` or `--epochs -3` is a user error naming the flag. */
export function numberFlag(
  name: string,
  value: string | undefined,
  opts: { integer?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const bad = !Number.isFinite(n) || value.trim() === "" || (opts.integer && !Number.isInteger(n)) ||
    (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max);
  if (bad) {
    const range = [
      opts.integer ? "an integer" : "a number",
      opts.min !== undefined ? `>= ${opts.min}` : "",
      opts.max !== undefined ? `<= ${opts.max}` : "",
    ].filter(Boolean).join(" ");
    throw new UserError(`--${name}: "${value}" is not ${range}`);
  }
  return n;
}
