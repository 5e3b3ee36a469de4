// The dashboard driven in Debian's chromium by playwright-core (no browser download):
// log in, see the nodes, a change made through the API appears without a reload,
// filter and search, bulk manage + provide + power on with per-node errors, a node's
// history timeline, log out.  test_dashboard_browser.py starts the server, makes the
// nodes and runs this; every wait is for something on the page, none is a sleep.
//
// Environment: BASE (the server's URL), USERNAME, PASSWORD, NODES (JSON name -> uuid),
// SHOTS (a directory for the screenshots, optional).
import { chromium } from "playwright-core";

const base = process.env.BASE;
const nodes = JSON.parse(process.env.NODES);
const shots = process.env.SHOTS || "";
const WAIT = 30000;

function log(text) { console.log(`dashboard_flow: ${text}`); }

async function api(method, path, body) {
  const auth = Buffer.from(`${process.env.USERNAME}:${process.env.PASSWORD}`).toString("base64");
  const response = await fetch(base + path, {
    method,
    headers: { "Authorization": `Basic ${auth}`, "Content-Type": "application/json",
               "X-OpenStack-Ironic-API-Version": "latest" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) { throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`); }
}

const row = (name) => `#node-${nodes[name]}`;
async function rowCount(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll("#node-rows tr").length === n,
                             count, { timeout: WAIT });
}
async function rowIs(page, name, attribute, value) {
  await page.waitForSelector(`${row(name)}[data-${attribute}="${value}"]`, { timeout: WAIT });
}
async function shot(page, name) {
  if (shots) { await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  page.setDefaultTimeout(WAIT);
  page.on("dialog", (dialog) => dialog.accept());
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (m) => { if (m.type() === "error") { problems.push(`console: ${m.text()}`); } });

  log("log in");
  await page.goto(base + "/dashboard");
  if (!page.url().includes("/dashboard/login")) { throw new Error(`not sent to the login: ${page.url()}`); }
  await page.fill('input[name="username"]', process.env.USERNAME);
  await page.fill('input[name="password"]', "wrong password, twelve+");
  await page.click('button[type="submit"]');
  await page.waitForSelector("text=The user name or password is wrong.");
  await shot(page, "dashboard-login");
  problems.length = 0;  // the refused login's 401, which the browser reports
  await page.fill('input[name="username"]', process.env.USERNAME);
  await page.fill('input[name="password"]', process.env.PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL(base + "/dashboard");
  await rowCount(page, 3);

  log("live: a change made through the API redraws its row, no reload");
  await page.waitForSelector('body[data-live="on"]');
  await page.evaluate(() => { window.sameDocument = true; });
  await api("PUT", `/v1/nodes/${nodes["db-1"]}/states/provision`, { target: "manage" });
  await rowIs(page, "db-1", "state", "manageable");

  log("filter and search");
  await page.selectOption('select[name="provision_state"]', "manageable");
  await rowCount(page, 1);
  await page.waitForSelector(row("db-1"));
  await page.selectOption('select[name="provision_state"]', "");
  await rowCount(page, 3);
  await page.fill("#search", "web-2");
  await rowCount(page, 1);
  await page.waitForSelector(row("web-2"));
  await page.fill("#search", "");
  await rowCount(page, 3);

  log("bulk manage: db-1 is manageable already, its refusal is shown");
  for (const name of ["web-1", "web-2", "db-1"]) { await page.check(`${row(name)} input.pick`); }
  await page.click('button[value="manage"]');
  await page.waitForSelector("#action-results >> text=manage: 2 accepted, 1 refused");
  await page.waitForSelector(`#action-results li.failed[data-node="${nodes["db-1"]}"]`);
  await rowIs(page, "web-1", "state", "manageable");
  await rowIs(page, "web-2", "state", "manageable");

  log("bulk provide and power on (the selection survived the rows' redraws)");
  await page.click('button[value="provide"]');
  await page.waitForSelector("#action-results >> text=provide: 3 accepted");
  for (const name of ["web-1", "web-2", "db-1"]) { await rowIs(page, name, "state", "available"); }
  await page.click('button[value="power on"]');
  await page.waitForSelector("#action-results >> text=power on: 3 accepted");
  for (const name of ["web-1", "web-2", "db-1"]) { await rowIs(page, name, "power", "power on"); }
  if (!(await page.evaluate(() => window.sameDocument === true))) {
    throw new Error("the page was reloaded");
  }
  await shot(page, "dashboard-nodes");

  log("the node page and its history");
  await page.click(`${row("web-1")} a`);
  await page.waitForURL(`${base}/dashboard/nodes/${nodes["web-1"]}`);
  await page.waitForSelector("ol.timeline >> text=manageable → cleaning (provide)");
  const phases = await page.locator("ol.timeline li").count();
  if (phases < 5) { throw new Error(`the timeline shows ${phases} events`); }
  await page.waitForSelector("ol.timeline li .lasted >> text=/lasted/");
  await shot(page, "dashboard-node");

  log("log out");
  await page.click('form.logout button');
  await page.waitForURL(base + "/dashboard/login");
  await page.goto(base + "/dashboard");
  if (!page.url().includes("/dashboard/login")) { throw new Error("still logged in after logout"); }
  if (problems.length) { throw new Error(problems.join("\n")); }
  log("done");
} finally {
  await browser.close();
}
