/** DataError: a data set the stages cannot use (bad case, bad split setting), reported as one line, exit 2. */

/** Its message names the file or setting and the problem; runCli prints it without a stack. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}
