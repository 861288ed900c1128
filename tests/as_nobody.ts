/**
 * The permission tests run code as user nobody (root reads anything), so nobody must be able to read the
 * checkout. A clone under a private folder (a 0700 home or mktemp -d) cannot be: those tests are then skipped
 * with this reason printed, rather than failing on a setup that says nothing about the code.
 */
import { ROOT } from "./run_script.ts";

const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/** Why code in this checkout cannot run as nobody here, or undefined when it can (or when not root). */
export const nobodyCannotRead: string | undefined = await (async () => {
  if (Deno.uid() !== 0) return undefined;
  // Without setpriv the tests themselves fail, saying it is needed; only the checkout's reach is judged here.
  const probe = await new Deno.Command("setpriv", { args: [...NOBODY, "test", "-r", `${ROOT}deno.json`] })
    .output().catch(() => undefined);
  if (!probe || probe.success) return undefined;
  return `user nobody cannot read the checkout at ${ROOT} (a folder above it is private); ` +
    "the permission tests that run as nobody are skipped";
})();

if (nobodyCannotRead) console.error(nobodyCannotRead);
