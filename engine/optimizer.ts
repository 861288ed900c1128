/**
 * Adam (as torch.optim.Adam, no weight decay) over named variables with state that serialises to host
 * tensors, and the learning-rate schedule of the Hu code (ReduceLROnPlateau on the last batch's loss, stepped
 * once per epoch from epoch 10) or a constant rate; both restore exactly on resume.
 */
import { tf } from "./tf.ts";
import type { HostTensor } from "../io/host_tensor.ts";

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** Adam with moments keyed by variable name, so a checkpoint restores them whatever the creation order. */
export class Adam {
  /** Number of steps taken (torch's state["step"]). */
  t = 0;
  lr: number;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();

  constructor(private vars: ReadonlyMap<string, tf.Variable>, private opts: AdamOptions) {
    this.lr = opts.lr;
    for (const [name, x] of vars) {
      // tidy frees the zero tensors that tf.variable copies from.
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(x), false)));
    }
  }

  /** One update from gradients keyed like the variables (the caller disposes grads). */
  step(grads: ReadonlyMap<string, tf.Tensor>): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this.opts;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const stepSize = this.lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (const [name, x] of this.vars) {
      // As torch.optim.Adam skips a parameter whose .grad is None: a part the forward pass did not use (SAMed's
      // point embeddings without prompts) keeps its value and its moments.
      const g = grads.get(name);
      if (!g) continue;
      const m = this.m.get(name)!, v = this.v.get(name)!;
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        m.assign(m1);
        v.assign(v1);
        // torch: p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
        x.assign(tf.sub(x, tf.mul(tf.div(m1, tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps)), stepSize)));
      });
    }
  }

  /** Moments as host tensors named "<var>.exp_avg" / "<var>.exp_avg_sq" (torch's state names). */
  async exportState(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, m] of this.m) {
      out.set(`${name}.exp_avg`, {
        dtype: "float32",
        shape: m.shape,
        data: (await m.data()) as Float32Array,
      });
      const v = this.v.get(name)!;
      out.set(`${name}.exp_avg_sq`, {
        dtype: "float32",
        shape: v.shape,
        data: (await v.data()) as Float32Array,
      });
    }
    return out;
  }

  /** Restores moments and step count; a missing or misshapen entry throws (the caller words the error). */
  importState(state: ReadonlyMap<string, HostTensor>, t: number): void {
    for (const [kind, map] of [["exp_avg", this.m], ["exp_avg_sq", this.v]] as const) {
      for (const [name, x] of map) {
        const h = state.get(`${name}.${kind}`);
        if (!h) throw new Error(`optimizer state lacks ${name}.${kind}`);
        if (h.shape.join(",") !== x.shape.join(",")) {
          throw new Error(`optimizer state ${name}.${kind} has shape [${h.shape}], expected [${x.shape}]`);
        }
        tf.tidy(() => x.assign(tf.tensor(h.data as Float32Array, h.shape, "float32")));
      }
    }
    this.t = t;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
    this.m.clear();
    this.v.clear();
  }
}

export interface PlateauOptions {
  /** "plateau": ReduceLROnPlateau (mode min); "constant": the rate never changes. */
  kind: "plateau" | "constant";
  factor: number;
  patience: number;
  /** Relative improvement needed to count as better (torch threshold_mode "rel"). */
  threshold: number;
  /** First epoch (0-based) whose loss is fed to the scheduler: 10 in the Hu code. */
  startEpoch: number;
  minLr: number;
}

export const PLATEAU_DEFAULTS: PlateauOptions = {
  kind: "plateau",
  factor: 0.1,
  patience: 10,
  threshold: 1e-4,
  startEpoch: 10,
  minLr: 0,
};

export interface ScheduleState {
  best: number | null;
  badEpochs: number;
}

/** torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min", cooldown=0, eps=1e-8), fed once per epoch. */
export class LrSchedule {
  best = Infinity;
  badEpochs = 0;

  constructor(readonly opts: PlateauOptions) {}

  /** After epoch (0-based) with metric (the epoch's last training loss): the learning rate to use next. */
  step(epoch: number, metric: number, lr: number): number {
    if (this.opts.kind === "constant" || epoch < this.opts.startEpoch) return lr;
    if (metric < this.best * (1 - this.opts.threshold)) {
      this.best = metric;
      this.badEpochs = 0;
    } else {
      this.badEpochs++;
    }
    if (this.badEpochs > this.opts.patience) {
      this.badEpochs = 0;
      const next = Math.max(lr * this.opts.factor, this.opts.minLr);
      if (lr - next > 1e-8) return next;
    }
    return lr;
  }

  /** JSON-safe state (Infinity becomes null). */
  state(): ScheduleState {
    return { best: Number.isFinite(this.best) ? this.best : null, badEpochs: this.badEpochs };
  }

  restore(s: ScheduleState): void {
    this.best = s.best ?? Infinity;
    this.badEpochs = s.badEpochs;
  }
}
