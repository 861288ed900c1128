/**
 * Small tmpfs mounts for the tests of what happens on a read-only or full file system (EROFS, ENOSPC): root
 * only, and not inside a container that forbids mounting, so the tests ask `canMount` and skip otherwise.
 */

/** Mounts a tmpfs with these options on dir; false where mounting is not allowed. */
export async function mountTmpfs(dir: string, options: string): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const r = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", options, "tmpfs", dir] }).output()
    .catch(() => undefined);
  return r?.success ?? false;
}

export const umount = (dir: string) => new Deno.Command("umount", { args: [dir] }).output();

/** Whether this process may mount a tmpfs; probed once. */
export const canMount = await (async () => {
  const dir = await Deno.makeTempDir();
  const ok = await mountTmpfs(dir, "size=64k");
  if (ok) await umount(dir);
  await Deno.remove(dir);
  return ok;
})();
