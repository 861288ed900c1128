/**
 * Command lines read against an option shape (pipeline/option_schema.ts): the flags are derived from the
 * shape's keys (batchSize -> --batch-size; boolean kinds are switches), parsed strictly by node:util
 * parseArgs, and every value is checked by the same schema that checks config files and run requests.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UserError } from "../errors.ts";
import { applyOptionValues, optionName, type Options, type OptionShape } from "./option_schema.ts";

type ArgOptions = NonNullable<ParseArgsConfig["options"]>;

/** Parses args strictly (unknown flags and missing values are user errors, exit 2). */
export function parseFlags<O extends ArgOptions>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UserError((err as Error).message.split("\n")[0]);
  }
}

const isSwitch = (kind: unknown) => (kind as { def?: { type?: string } }).def?.type === "boolean";

export interface Command<S extends OptionShape> {
  /** The given options, checked, over the defaults. */
  options: Partial<Options<S>>;
  /** Flag names (not keys) the user gave: what --resume compares against the saved run. */
  given: Record<string, string>;
  positionals: string[];
  help: boolean;
}

/** Parses a command line against shape; `--help`/`-h` is always accepted. */
export function parseCommand<S extends OptionShape>(
  args: string[],
  shape: S,
  opts: { defaults?: Partial<Options<S>>; positionals?: boolean } = {},
): Command<S> {
  const argOptions: ArgOptions = { help: { type: "boolean", short: "h" } };
  for (const [key, kind] of Object.entries(shape)) {
    argOptions[optionName(key)] = { type: isSwitch(kind) ? "boolean" : "string" };
  }
  const { values, positionals } = parseFlags(args, argOptions, opts.positionals);
  const { help, ...rest } = values as Record<string, string | boolean | undefined>;
  const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  return {
    options: applyOptionValues(shape, opts.defaults ?? {}, given, "flags"),
    given,
    positionals,
    help: !!help,
  };
}

/** Throws a user error listing the flags of `names` that were not given. */
export function requireFlags(options: Record<string, unknown>, names: string[], usage: string): void {
  const missing = names.filter((k) => options[k] === undefined || options[k] === null);
  if (missing.length) {
    throw new UserError(`missing ${missing.map((k) => `--${optionName(k)}`).join(", ")}\n${usage}`);
  }
}
