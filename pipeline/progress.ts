/**
 * Training progress on stderr: a live bar (cli-progress) when stderr is a terminal, plain lines otherwise
 * (CI logs, pipes), from the same events the train stage yields and the server streams.
 */
import cliProgress from "cli-progress";
import process from "node:process";
import type { DiceScores, ProgressEvent, TrainEvent } from "../stages/train_events.ts";

/** 75 -> "1m15s", 3725 -> "1h02m05s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return h ? `${h}h${pad(m)}m${pad(r)}s` : m ? `${m}m${pad(r)}s` : `${r}s`;
}

const fmtLr = (lr: number) => lr.toExponential(1);
const fmtDice = (d: DiceScores) =>
  `RV ${d.RV.toFixed(3)} Myo ${d.Myo.toFixed(3)} LV ${d.LV.toFixed(3)} avg ${d.avg.toFixed(3)}`;

export interface ReporterOptions {
  /** Draw a bar (default: whether stderr is a terminal). */
  tty?: boolean;
  /** Where plain lines go (default: stderr). */
  write?: (line: string) => void;
  /** Plain mode: print every n-th step (and every epoch's last). */
  every?: number;
}

/** Renders TrainEvents; call stop() in a finally so the terminal is left clean. */
export class ProgressReporter {
  private bar?: cliProgress.SingleBar;
  private barEpoch = 0;
  private readonly tty: boolean;
  private readonly write: (line: string) => void;
  private readonly every: number;

  constructor(opts: ReporterOptions = {}) {
    this.tty = opts.tty ?? Deno.stderr.isTerminal();
    this.write = opts.write ?? ((line) => console.error(line));
    this.every = Math.max(1, opts.every ?? 10);
  }

  /** A message line (the bar, if any, is stopped first so it is not overwritten). */
  line(text: string): void {
    this.stopBar();
    this.write(text);
  }

  onEvent(ev: TrainEvent): void {
    if (ev.type === "progress") return this.progress(ev);
    if (ev.type === "validation") {
      return this.line(`epoch ${ev.epoch} validation Dice ${fmtDice(ev.dice)}${ev.best ? " (best)" : ""}`);
    }
    if (ev.type === "done") {
      return this.line(
        `${ev.cancelled ? "stopped" : "finished"} after epoch ${ev.epoch} in ${formatDuration(ev.elapsed_s)}`,
      );
    }
  }

  private progress(ev: ProgressEvent): void {
    if (!this.tty) {
      if (ev.step % this.every === 0 || ev.step === ev.steps) {
        this.write(
          `epoch ${ev.epoch}/${ev.epochs} step ${ev.step}/${ev.steps} loss ${ev.loss.toFixed(4)} lr ${
            fmtLr(ev.lr)
          } ` +
            `elapsed ${formatDuration(ev.elapsed_s)} eta ${formatDuration(ev.eta_s)}`,
        );
      }
      return;
    }
    const payload = {
      epoch: `${ev.epoch}/${ev.epochs}`,
      loss: ev.loss.toFixed(4),
      lr: fmtLr(ev.lr),
      elapsed: formatDuration(ev.elapsed_s),
      eta: formatDuration(ev.eta_s),
    };
    if (!this.bar || this.barEpoch !== ev.epoch) {
      this.stopBar();
      this.bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: "epoch {epoch} |{bar}| {value}/{total} loss {loss} lr {lr} elapsed {elapsed} eta {eta}",
        hideCursor: false,
        clearOnComplete: false,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(ev.steps, 0, payload);
      this.barEpoch = ev.epoch;
    }
    this.bar.update(ev.step, payload);
  }

  private stopBar(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  stop(): void {
    this.stopBar();
  }
}
