/** NiftiError: a bad NIfTI file, named by file and header field so the user can see what to fix. */
import { UserError } from "../errors.ts";

/** A user error (runCli prints its one-line message and exits 2): `<file>: <field>: <problem>`. */
export class NiftiError extends UserError {
  file: string;
  field: string;

  constructor(file: string, field: string, problem: string) {
    super(`${file}: ${field}: ${problem}`);
    this.file = file;
    this.field = field;
  }
}
