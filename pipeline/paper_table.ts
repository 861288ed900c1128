/**
 * Li & Rajpurkar's published Table 1 (ACDC, 5 labelled patients, Dice in %), printed beside our grid so a
 * reader sees at once where a reproduction agrees and where it does not (docs/methods.md 6.1).
 */
export interface PaperRow {
  method: "cnn-head" | "vit-head" | "gnet" | "loramednet";
  weights: "SAM" | "MedSAM";
  RV: number;
  Myo: number;
  LV: number;
  avg: number;
}

export const PAPER_TABLE_1: readonly PaperRow[] = [
  { method: "cnn-head", weights: "SAM", RV: 59.87, Myo: 62.81, LV: 78.96, avg: 67.21 },
  { method: "cnn-head", weights: "MedSAM", RV: 65.45, Myo: 77.13, LV: 90.06, avg: 77.55 },
  { method: "vit-head", weights: "SAM", RV: 58.48, Myo: 62.18, LV: 80.58, avg: 67.08 },
  { method: "vit-head", weights: "MedSAM", RV: 59.8, Myo: 61.12, LV: 79.24, avg: 66.72 },
  { method: "gnet", weights: "SAM", RV: 57.92, Myo: 66.23, LV: 84.04, avg: 69.4 },
  { method: "gnet", weights: "MedSAM", RV: 78.58, Myo: 82.02, LV: 91.71, avg: 84.1 },
  { method: "loramednet", weights: "SAM", RV: 77.8, Myo: 84.06, LV: 94.15, avg: 85.34 },
  { method: "loramednet", weights: "MedSAM", RV: 73.68, Myo: 80.9, LV: 94.01, avg: 82.86 },
];
