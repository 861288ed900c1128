/**
 * The vocabulary every option is written in (integers in a range, numbers, choices, paths, "all", null),
 * each a zod schema whose error text completes the sentence `--epochs: "0" is not ...`, and the one function
 * that applies named option values (from flags, a --config file, a run's config.json or an HTTP request) onto
 * a base config. Flag values arrive as strings, file values as JSON: every kind accepts both.
 */
import { z } from "zod";
import { ConfigError } from "../errors.ts";

/** A numeric string becomes its number; anything else is left for the schema to judge. */
const fromText = (v: unknown) =>
  typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v;

/** An integer in min..max (max defaults to the largest exact double). */
export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
  return z.preprocess(fromText, z.number({ error }).int({ error }).min(min, { error }).max(max, { error }));
}

/** A finite number with optional bounds (`above` is exclusive). */
export function num(o: { min?: number; max?: number; above?: number }) {
  const error = "a number " + [
    o.above !== undefined ? `> ${o.above}` : "",
    o.min !== undefined ? `>= ${o.min}` : "",
    o.max !== undefined ? `<= ${o.max}` : "",
  ].filter(Boolean).join(" and ");
  let n = z.number({ error });
  if (o.min !== undefined) n = n.min(o.min, { error });
  if (o.max !== undefined) n = n.max(o.max, { error });
  if (o.above !== undefined) n = n.gt(o.above, { error });
  return z.preprocess(fromText, n);
}

/** One of a fixed list of names. */
export function oneOf<const T extends readonly [string, ...string[]]>(choices: T) {
  return z.enum(choices, { error: `one of ${choices.join(", ")}` });
}

/** A non-empty path (existence is checked where the file is used, so the error names what it is for). */
export const path = z.string({ error: "a path" }).min(1, { error: "a path" });

/** `"null"` (a flag) or null (a file) for "none" or "the default". */
export function nullable<T extends z.ZodType>(kind: T) {
  return z.preprocess((v) => (v === "null" ? null : v), kind.nullable());
}

/** An integer >= min, or "all". */
export function intOrAll(min: number) {
  return z.union([z.literal("all"), int(min)], { error: `an integer >= ${min} or "all"` });
}

/** A comma-separated list ("0,1,2") of one kind (a file may give a JSON array). */
export function listOf<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()).filter(Boolean) : v),
    z.array(item, { error: "a comma-separated list" }).min(1, { error: "a non-empty list" }),
  );
}

/** A command-line switch (no value). */
export const flag = z.boolean();

/** Option key to its flag and file name: batchSize -> batch-size. */
export const optionName = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

// deno-lint-ignore no-explicit-any
export type OptionShape = Record<string, z.ZodType<any, any>>;
export type Options<S extends OptionShape> = { [K in keyof S]: z.output<S[K]> };

/**
 * Applies option values named by their flag names onto base; unknown names (with a hint for near misses)
 * and bad values are ConfigErrors naming the option and where it came from (`flags` or a file path).
 */
export function applyOptionValues<S extends OptionShape>(
  shape: S,
  base: Partial<Options<S>>,
  values: Record<string, unknown>,
  source: string,
): Partial<Options<S>> {
  const keyOf = new Map(Object.keys(shape).map((k) => [optionName(k), k]));
  const out: Record<string, unknown> = { ...base };
  for (const [name, raw] of Object.entries(values)) {
    const key = keyOf.get(name);
    if (key === undefined) {
      const hint = [...keyOf.keys()].find((o) =>
        o.replace(/-/g, "") === name.replace(/[-_]/g, "").toLowerCase()
      );
      throw new ConfigError(`${source}: unknown option "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
    }
    const parsed = shape[key].safeParse(raw);
    if (!parsed.success) {
      const where = source === "flags" ? `--${name}` : `${source}: "${name}"`;
      throw new ConfigError(`${where}: ${JSON.stringify(raw)} is not ${parsed.error.issues[0].message}`);
    }
    out[key] = parsed.data;
  }
  return out as Partial<Options<S>>;
}

/** Values keyed by flag name (what config.json stores and --config reads back). */
export function toOptionValues(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [optionName(k), v]));
}
