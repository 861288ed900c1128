/// <reference lib="dom" />
/**
 * The web page in a real headless Chromium (Debian's chromium, driven by puppeteer-core): it asks for the
 * token, starts a tiny run from its form, its loss and Dice curves grow while the run trains, and a dropped
 * scan comes back as a colour overlay that pages slice by slice, with per-class volumes. Nothing is fetched
 * from anywhere but the server. Skipped, with the reason printed, where there is no Chromium.
 * SERVE_SCREENSHOT=F also saves the final page to F (docs/serve.png is made that way).
 */
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";
import { readNifti } from "../io/nifti.ts";
import { TINY_RUN, tinyData } from "../server/test_support.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
if (!hasChromium) console.log(`skipping the web page test: no ${CHROMIUM} (apt-get install chromium)`);

const TOKEN = "page-test-token";
const EPOCHS = 6;

Deno.test({
  name: "page: token, start a run, curves grow, upload a scan, see and page the overlay",
  ignore: !hasChromium,
  // puppeteer keeps its own sockets and timers alive between calls; the browser is closed in finally.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "serve_page_" });
    const data = await tinyData(`${tmp}/data`);
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../server/main.ts", import.meta.url).pathname,
        "--port",
        "0",
        "--backend",
        "wasm",
        "--runs",
        `${tmp}/runs`,
      ],
      env: { SERVE_TOKEN: TOKEN },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const serverLog = new Response(server.stderr).text();
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox"],
    });
    try {
      const line = (await server.stdout.pipeThrough(new TextDecoderStream()).getReader().read()).value!;
      const url = JSON.parse(line.split("\n")[0]).url as string;
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 1000 });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${(e as Error).message}`));
      page.on("request", (r) => {
        if (!r.url().startsWith(url) && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) {
          problems.push(`fetched from elsewhere: ${r.url()}`);
        }
      });
      await page.goto(url);
      await page.waitForSelector("#token-form:not([hidden])", { timeout: 10_000 });
      await page.type("#token", TOKEN);
      await page.click("#token-form button");

      await page.click("#start summary");
      await page.$eval(
        "#start-config",
        (el, v) => ((el as HTMLTextAreaElement).value = v),
        JSON.stringify({ ...TINY_RUN, data, epochs: EPOCHS }),
      );
      await page.click("#start-btn");
      await page.waitForFunction(
        () => document.getElementById("start-msg")!.textContent!.startsWith("started"),
        { timeout: 10_000 },
      );

      // Sample the loss curve while the run trains: it must be seen growing, not just full at the end.
      const samples: number[] = [];
      const points = (id: string) => page.$eval(id, (el) => Number((el as HTMLElement).dataset.points));
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const n = await points("#loss-chart");
        if (samples.at(-1) !== n) samples.push(n);
        if (await page.$eval("#run-status", (el) => el.textContent!.startsWith("done"))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const status = await page.$eval("#run-status", (el) => el.textContent);
      assert.match(status!, /^done after epoch 6; test Dice \d\.\d{3}$/);
      const grown = samples.filter((n) => n > 0);
      assert.ok(grown.length >= 3, `loss curve seen at ${samples.join(", ")} points`);
      assert.deepEqual(grown, [...grown].sort((a, b) => a - b), "the curve only grows");
      assert.equal(samples.at(-1), EPOCHS * 3, "one point per step");
      assert.equal(await points("#dice-chart"), EPOCHS, "one Dice point per epoch");

      const scan = `${data}/training/patient004/patient004_frame01.nii.gz`;
      const [nx, ny, nz] = (await readNifti(scan)).dims;
      const input = await page.$("input#file");
      await input!.uploadFile(scan);
      const middle = String(Math.floor(nz / 2));
      await page.waitForFunction((k) => document.getElementById("overlay")!.dataset.slice === k, {
        timeout: 30_000,
      }, middle).catch(async (err) => {
        throw new Error(
          `${err.message}; the page says: ${await page.$eval("#predict-msg", (el) => el.textContent)}`,
        );
      });
      const overlay = await page.$eval("#overlay", (el) => {
        const img = el as HTMLImageElement;
        const c = document.createElement("canvas");
        [c.width, c.height] = [img.naturalWidth, img.naturalHeight];
        const ctx = c.getContext("2d")!;
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < px.length; i += 4) {
          if (Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 40) coloured++;
        }
        return { w: img.naturalWidth, h: img.naturalHeight, coloured };
      });
      assert.deepEqual([overlay.w, overlay.h], [nx, ny]);
      assert.ok(overlay.coloured > 0, "labels are overlaid in colour");
      const volumes = await page.$$eval("#volumes tr", (rows) => rows.map((r) => r.textContent));
      assert.equal(volumes.length, 3);
      for (const [i, name] of ["RV", "Myo", "LV"].entries()) {
        assert.match(volumes[i]!, new RegExp(`^${name}\\d+\\.\\d mL$`));
      }
      await page.click("#next");
      const next = String(Math.floor(nz / 2) + 1);
      await page.waitForFunction((k) => document.getElementById("overlay")!.dataset.slice === k, {
        timeout: 10_000,
      }, next);
      assert.equal(
        await page.$eval("#slice-label", (el) => el.textContent!),
        `slice ${Number(next) + 1} of ${nz}`,
      );

      const shot = Deno.env.get("SERVE_SCREENSHOT") ?? `${tmp}/page.png`;
      await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      server.kill("SIGTERM");
      const code = (await server.status).code;
      assert.equal(code, 0, await serverLog);
    }
  },
});
