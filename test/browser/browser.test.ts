import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalCairn, startLocal } from "../../bin/local/twin.ts";
import { orderSummary } from "../../examples/orders/src/projections/order-summary.ts";

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Screenshots for review: test/output/ (not committed). */
const OUTPUT = new URL("../output/", import.meta.url).pathname;

let local: LocalCairn;
let browser: Browser;

beforeAll(async () => {
  process.env.DYNAMODB_ENDPOINT = inject("dynamodbEndpoint");
  local = await startLocal({ projections: [orderSummary], log: () => {} });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(async () => {
  await browser?.close();
  await local?.stop();
});

describe("the stream browser at / (headless Chromium)", () => {
  it("lists a category's streams, pages a stream's events, tails $all live, shows projections and resets one after a confirmation", async () => {
    // Prepare: an order with a correlation, positioned by the sequencer so it is listed
    const placed = await local.client.append("Order-77", [
      {
        type: "OrderPlaced",
        data: { customerId: "c-7", currency: "EUR" },
        metadata: { correlationId: "corr-77" },
      },
    ]);
    await local.client.append("Order-77", [
      {
        type: "ItemAdded",
        data: { sku: "tea", quantity: 2 },
        metadata: { correlationId: "corr-77", causationId: placed.eventIds[0] as string },
      },
    ]);
    while ((await local.client.listStreams({ category: "Order" })).streams.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const dialogs: string[] = [];
    page.on("dialog", async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.accept();
    });

    // Act: list the category, open the stream
    await page.goto(local.url);
    await page.fill("cairn-streams input[name=category]", "Order");
    await page.click("cairn-streams button");
    await page.click("cairn-streams a:text('Order-77')");
    await page.waitForSelector("cairn-stream .event >> nth=1");
    const events = await page.locator("cairn-stream .event").allInnerTexts();
    const allView = page.locator("cairn-all .event");
    await allView.nth(1).waitFor();
    const projectionRow = page.locator("cairn-projections tr.projection");
    await projectionRow.waitFor();
    const before = await projectionRow.innerText();
    await page.click("cairn-stream .event >> nth=1 >> a:text('correlationId corr-77')");
    const related = await page.locator("cairn-all .event.related").count();
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, "stream-browser.png"), fullPage: true });
    await page.click("cairn-projections button:text('reset')");
    const generation = Number(/generation (\d+)/.exec(before)?.[1]);
    await page
      .locator("cairn-projections tr.projection", { hasText: `generation ${generation + 1}` })
      .waitFor();

    // Assess
    expect(await page.locator("cairn-streams td").first().innerText()).toBe("Order-77");
    expect(events[0]).toContain("OrderPlaced");
    expect(events[0]).toContain('"customerId": "c-7"');
    expect(events[1]).toContain("ItemAdded");
    expect(events[1]).toContain(`causationId ${placed.eventIds[0]}`);
    expect(await allView.count()).toBeGreaterThanOrEqual(2);
    expect(related).toBe(2);
    expect(before).toMatch(/order-summary\s+\d+\/\d+\s+lag \d+\s+parked 0\s+generation \d+/);
    expect(dialogs).toEqual(["Reset order-summary? It rebuilds from position 0 with an empty read model."]);
    await page.close();
  });

  it("replays a projection's parked events after a confirmation and says what came of it", async () => {
    // Prepare: an OrderPlaced without data, which the example projection's handler cannot read
    await local.client.append("Order-88", [{ type: "OrderPlaced", data: null }]);
    while ((await local.client.projectionStatus("order-summary")).parkedCount === 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const dialogs: string[] = [];
    page.on("dialog", async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.accept();
    });

    // Act
    await page.goto(local.url);
    await page.click("cairn-projections button:text('replay parked')");
    const notice = page.locator("cairn-projections p.notice");
    await notice.waitFor();

    // Assess
    expect(dialogs).toEqual([
      "Replay the 1 parked events of order-summary? Its handlers run again on them; those that pass are unparked.",
    ]);
    expect(await notice.innerText()).toBe("replayed order-summary: 0 unparked, 1 failed again");
    expect(await page.locator("cairn-projections td.error").innerText()).toMatch(
      /^parked #\d+ Order-88@1 OrderPlaced: TypeError/,
    );
    await page.close();
  });
});
