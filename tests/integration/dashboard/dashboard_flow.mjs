// The dashboard driven in Debian's chromium by playwright-core (no browser download):
// log in, see the nodes, a change made through the API appears without a reload,
// filter and search, bulk manage + provide + power on with per-node errors, a node's
// history timeline, a CSV import (a bad file refused whole, then a good one), manage
// and provide the imported nodes, the conductors page, a deploy from the node page's
// form with its progress bar moving to 100% (the agent's reports sent as an Ironic
// agent's heartbeats: the fake deploy waits for one), the serial console in xterm.js
// showing a login prompt and taking keys, log out.  test_dashboard_browser.py starts
// the server, makes the nodes and runs this; every wait is for something on the page,
// none is a sleep.
//
// Environment: BASE (the server's URL), USERNAME, PASSWORD, NODES (JSON name -> uuid),
// CONSOLE_DRIVER_INFO (JSON driver_info of an IPMI BMC serving SOL), SHOTS (a
// directory for the screenshots, optional).
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
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function heartbeat(uuid, progress) {
  // what an Ironic-style agent sends (no token): the conductor keeps its progress
  const response = await fetch(`${base}/v1/heartbeat/${uuid}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-OpenStack-Ironic-API-Version": "latest" },
    body: JSON.stringify({ callback_url: "http://127.0.0.1:9999", progress: { id: "c1", ...progress } }),
  });
  if (response.status !== 202) { throw new Error(`heartbeat: ${response.status} ${await response.text()}`); }
}

const MIB = 1024 * 1024;
const BAD_CSV = "name,driver,bmc_address,mac,cpus\n" +
  "imp-1,fake-hardware,10.1.0.1,52:54:00:aa:00:01,8\n" +
  "imp-2,fake-hardware,10.1.0.2,not-a-mac,8\n" +
  "imp-3,fake-hardware,,52:54:00:aa:00:03,eight\n";
const GOOD_CSV = "name,driver,bmc_address,mac,cpus\n" +
  "imp-1,fake-hardware,10.1.0.1,52:54:00:aa:00:01,8\n" +
  "imp-2,fake-hardware,10.1.0.2,52:54:00:aa:00:02,8\n";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Yx1uVwYm0dJ3J2x1k7q7c1jY2o4aN0dE9w7g4aN0d ops@laptop";

async function upload(page, text) {
  await page.goto(base + "/dashboard/import");
  await page.setInputFiles('input[name="csv"]',
                           { name: "nodes.csv", mimeType: "text/csv", buffer: Buffer.from(text) });
  await page.click('#import-form button[type="submit"]');
  await page.waitForLoadState("load");
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

  log("an action with no node picked is refused, and the page says why");
  await page.click('button[value="manage"]');
  await page.waitForSelector("#action-results >> text=Select at least one node first.");

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

  log("import: a CSV with bad rows shows each row's error and creates nothing");
  const before = (await api("GET", "/v1/nodes")).nodes.length;
  await upload(page, BAD_CSV);
  await page.waitForSelector("#import-refused");
  await page.waitForSelector('table.import-errors tr[data-row="3"] >> text=/not a valid MAC address/');
  await page.waitForSelector('table.import-errors tr[data-row="4"] >> text=/missing bmc_address/');
  problems.length = 0;  // the refused upload's 400, which the browser reports
  const after = (await api("GET", "/v1/nodes")).nodes.length;
  if (after !== before) { throw new Error(`a refused import created ${after - before} node(s)`); }
  await shot(page, "dashboard-import-refused");

  log("import: a good CSV creates every node");
  await upload(page, GOOD_CSV);
  await page.waitForSelector("#import-done >> text=2 node(s) created");
  const imported = {};
  for (const name of ["imp-1", "imp-2"]) {
    imported[name] = await page.getAttribute(`table.import-created tr:has(a:text-is("${name}"))`, "data-uuid");
    nodes[name] = imported[name];
  }
  await shot(page, "dashboard-import");

  log("manage and provide the imported nodes from the table");
  await page.goto(base + "/dashboard");
  await page.waitForSelector('body[data-live="on"]');
  for (const name of ["imp-1", "imp-2"]) { await page.check(`${row(name)} input.pick`); }
  await page.click('button[value="manage"]');
  await page.waitForSelector("#action-results >> text=manage: 2 accepted");
  for (const name of ["imp-1", "imp-2"]) { await rowIs(page, name, "state", "manageable"); }
  await page.click('button[value="provide"]');
  await page.waitForSelector("#action-results >> text=provide: 2 accepted");
  for (const name of ["imp-1", "imp-2"]) { await rowIs(page, name, "state", "available"); }

  log("the conductors page");
  await page.click('header nav a:text-is("Conductors")');
  await page.waitForURL(base + "/dashboard/conductors");
  await page.waitForSelector("table.conductors td.alive >> text=alive");
  await page.waitForSelector('table.drivers tr[data-driver="fake-hardware"]');
  await shot(page, "dashboard-conductors");

  log("deploy imp-1 from its page and watch the image write's progress bar");
  // the fake deploy waits for an agent's call-back, which the heartbeats below stand in for
  await api("PATCH", `/v1/nodes/${imported["imp-1"]}`,
            [{ op: "add", path: "/driver_info/fake_wait", value: "deploy" }]);
  await page.goto(`${base}/dashboard/nodes/${imported["imp-1"]}`);
  await page.waitForSelector('body[data-live="on"]');
  await page.fill('input[name="image_source"]', "http://images.example/debian-12.qcow2");
  await page.fill('input[name="image_checksum"]', "9f2a".repeat(16));
  await page.fill('textarea[name="ssh_keys"]', KEY);
  await page.fill('textarea[name="user_data"]', "#cloud-config\npassword: not-for-pages\n");
  await page.click('form.deploy button[type="submit"]');
  await page.waitForSelector("#deploy-accepted");
  await page.waitForSelector('#live-state[data-state="wait call-back"]');
  await page.evaluate(() => { window.sameDocument = true; });
  await heartbeat(imported["imp-1"], { name: "write_image", done: 96 * MIB, total: 240 * MIB, rate: 31 * MIB });
  await page.waitForSelector('#live-state progress[value="40"]');
  await shot(page, "dashboard-deploy");
  await heartbeat(imported["imp-1"], { name: "write_image", done: 240 * MIB, total: 240 * MIB, rate: 30 * MIB });
  await page.waitForSelector('#live-state progress[value="100"]');
  await page.waitForSelector("#live-state >> text=/240.0 MiB of 240.0 MiB \\(100%\\)/");
  if (!(await page.evaluate(() => window.sameDocument === true))) { throw new Error("the page was reloaded"); }
  if ((await page.content()).includes("not-for-pages")) { throw new Error("the user data is on the page"); }

  log("the serial console in xterm.js: the machine's login prompt, keys typed");
  const con = await api("POST", "/v1/nodes", {
    name: "con-0", driver: "ipmi", console_interface: "ipmi-sol",
    driver_info: JSON.parse(process.env.CONSOLE_DRIVER_INFO),
  });
  await page.goto(`${base}/dashboard/nodes/${con.uuid}`);
  await page.click('a:text-is("Console")');
  await page.waitForURL(`${base}/dashboard/nodes/${con.uuid}/console`);
  await page.click('button:text-is("Enable console")');
  await page.waitForSelector('body[data-console="connected"]', { timeout: 60000 });
  await page.waitForSelector(".xterm-rows >> text=con-0 login:");
  await page.click("#terminal");
  await page.keyboard.type("root");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".xterm-rows >> text=Password:");  // the machine took the keys
  // "enabling the console…" was the answer to the click: connected, it is gone
  await page.waitForFunction(() => document.getElementById("console-result").textContent === "",
    null, { timeout: 5000 });
  await shot(page, "dashboard-console");
  await page.click('button:text-is("Disable console")');
  await page.waitForSelector("#console-status >> text=console disabled", { timeout: 60000 });
  await page.waitForFunction(() => document.getElementById("console-result").textContent === "",
    null, { timeout: 5000 });

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
