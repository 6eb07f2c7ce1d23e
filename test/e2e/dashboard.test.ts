import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "#shared/core/api-keys";
import type { MetricsSnapshot } from "#shared/core/metrics";
import { drivePipeline } from "../../tools/bench/pipeline-driver.ts";
import { promptBook } from "../../tools/bench/prompts.ts";
import { generateTrace } from "../../tools/bench/trace.ts";
import { pollUntil } from "../helpers/local-aws.ts";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// The live dashboard in a real browser (Debian's Chromium through playwright-core, no browser
// download) against the embedded stack started as `npm start` starts it, while the bench's
// pipeline driver sends it an open-loop trace: the numbers move, a setting changed through the
// page is predicted, applied, and used by the batcher, and the test saves a screenshot.
const CHROMIUM = process.env.BATCHLINE_CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOT = join("test-results", "dashboard.png");
const ROUTE = "llama-2-7b";
const stage = `e2ed${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-dashboard-"));
const apiKey = generateApiKey();
let stack: StackProcess;
let browser: Browser;
let page: Page;
let load: Promise<unknown>;

async function metrics(): Promise<MetricsSnapshot> {
  const response = await fetch(`${stack.http}/v1/metrics`, { headers: { authorization: `Bearer ${apiKey}` } });
  return (await response.json()) as MetricsSnapshot;
}

const until = <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number) => pollUntil(probe, what, timeoutMs, 250);

const tile = (id: string) => page.locator(`#headline-${id}`).innerText();

beforeAll(async () => {
  [stack, browser] = await Promise.all([
    startStackProcess({ stage, dataDir, apiKey }, await stackPorts()),
    chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }),
  ]);
  // 300 jobs a minute of 32 + 128 tokens for two minutes: several sequences on the copy at once.
  const trace = generateTrace({ seed: 14, durationMs: 120_000, arrivals: { kind: "poisson", rpm: 300 }, lengths: { kind: "fixed", promptTokens: 32, maxTokens: 128 } });
  load = drivePipeline({ http: stack.http, websocket: stack.ws, apiKey, model: ROUTE }, trace, { prompts: promptBook(), untilMs: 130_000 }).catch((error: unknown) => error);
  page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
  page.on("pageerror", (error) => process.stderr.write(`page error: ${error.message}\n`));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.interrupt();
  await load;
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the live dashboard in Chromium", () => {
  it("draws the route's numbers as they move, predicts a settings change, applies it, and the batcher uses it", async () => {
    await page.goto(`${stack.dashboard}?every=1000&route=${ROUTE}#key=${apiKey}`);
    // The key left the address bar once read.
    await until(async () => (new URL(page.url()).hash === "" ? true : undefined), "the key to leave the URL", 10_000);

    // The numbers move: jobs finish, and the tokens/s tile changes from one poll to a later one.
    const finished = await until(async () => {
      const text = await tile("finished");
      return Number(text) > 0 ? Number(text) : undefined;
    }, "finished jobs on the page", 90_000);
    expect(finished).toBeGreaterThan(0);
    const firstRate = await tile("tokens-per-second");
    await until(async () => ((await tile("tokens-per-second")) !== firstRate ? true : undefined), "tokens/s to change", 30_000);
    // Every chart is drawn by uPlot (a canvas each), with several samples behind it.
    for (const id of ["queue-depth", "queue-age", "batch-fill", "gpu-busy", "latency", "tokens", "cost", "errors", "copies"]) {
      await expect(page.locator(`#chart-${id} canvas`).count()).resolves.toBeGreaterThan(0);
    }
    await until(async () => (Number(/(\d+) samples/.exec(await page.locator("#status").innerText())?.[1] ?? 0) >= 3 ? true : undefined), "three samples", 30_000);

    // A change through the page: predicted first (Apply stays off until then), then applied.
    await until(async () => ((await page.locator("#setting-max_in_flight_per_copy").inputValue()) !== "" ? true : undefined), "the route's settings in the form", 30_000);
    await page.fill("#setting-max_in_flight_per_copy", "1");
    expect(await page.locator("#apply").isDisabled()).toBe(true);
    await page.click("#predict");
    await page.locator("#prediction-table").waitFor({ timeout: 60_000 });
    const rows = await page.locator("#prediction-table tr").allInnerTexts();
    expect(rows.some((r) => r.startsWith("throughput"))).toBe(true);
    expect(rows.some((r) => r.startsWith("p95"))).toBe(true);
    await page.click("#apply");
    await until(async () => ((await page.locator("#message").innerText()).startsWith("applied") ? true : undefined), "the change to be applied", 30_000);
    const stored = (await (await fetch(`${stack.http}/v1/routes/${ROUTE}/settings`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { settings: { max_in_flight_per_copy: number } };
    expect(stored.settings.max_in_flight_per_copy).toBe(1);

    // The batcher uses it: with jobs waiting, the copy runs one sequence at a time, three polls running.
    let inARow = 0;
    await until(async () => {
      const snapshot = await metrics();
      const component = snapshot.components.find((c) => snapshot.routes.find((r) => r.route === ROUTE)?.components.includes(c.component));
      const waiting = snapshot.routes.find((r) => r.route === ROUTE)?.lanes.reduce((sum, l) => sum + l.depth.visible, 0) ?? 0;
      const perCopy = (component?.running_sequences ?? Number.POSITIVE_INFINITY) / Math.max(1, component?.copies.serving ?? 1);
      inARow = waiting > 0 && perCopy <= 1 ? inARow + 1 : 0;
      return inARow >= 3 ? true : undefined;
    }, "the copy to hold one sequence while jobs wait", 60_000);

    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
  }, 300_000);
});
