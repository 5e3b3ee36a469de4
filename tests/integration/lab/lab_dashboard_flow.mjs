// The walk in the lab: a real QEMU machine deployed from the dashboard's
// form, its progress followed on the node page, its boot seen in the browser's
// console (xterm.js on the websocket proxy).  test_lab_dashboard_e2e.py starts the
// lab and the server (noauth: no login), makes lab-0 available and runs this.
//
// Environment: BASE, NODE (lab-0's uuid), IMAGE, CHECKSUM, TIMEOUT (ms), SHOTS.
import { chromium } from "playwright-core";

const base = process.env.BASE;
const node = process.env.NODE;
const timeout = Number(process.env.TIMEOUT);
const shots = process.env.SHOTS || "";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Yx1uVwYm0dJ3J2x1k7q7c1jY2o4aN0dE9w7g4aN0d ops@laptop";

function log(text) { console.log(`lab_dashboard_flow: ${text}`); }
async function shot(page, name) {
  if (shots) { await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  context.on("page", (p) => {
    p.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  });

  log("the console first, so that it shows the whole boot");
  const consolePage = await context.newPage();
  consolePage.setDefaultTimeout(120000);
  await consolePage.goto(`${base}/dashboard/nodes/${node}/console`);
  await consolePage.click('button:text-is("Enable console")');
  await consolePage.waitForSelector('body[data-console="connected"]');

  log("deploy from the node page's form");
  const page = await context.newPage();
  page.setDefaultTimeout(120000);
  await page.goto(`${base}/dashboard/nodes/${node}`);
  await page.waitForSelector('body[data-live="on"]');
  await page.evaluate(() => {
    // every progress value the live panel shows, however briefly
    window.progressSeen = [];
    const panel = document.getElementById("node-live");
    new MutationObserver(function () {
      const bar = panel.querySelector("progress");
      if (bar) { window.progressSeen.push(bar.getAttribute("value")); }
    }).observe(panel, { childList: true, subtree: true });
  });
  await page.fill('input[name="image_source"]', process.env.IMAGE);
  await page.fill('input[name="image_checksum"]', process.env.CHECKSUM);
  await page.fill('input[name="hostname"]', "lab-web");
  await page.fill('textarea[name="ssh_keys"]', KEY);
  await page.fill('textarea[name="user_data"]', "#cloud-config lab-web\n");
  await page.click('form.deploy button[type="submit"]');
  await page.waitForSelector("#deploy-accepted");
  await page.waitForSelector("#live-state progress", { timeout });
  await shot(page, "lab-dashboard-deploy");
  await page.waitForSelector('#live-state[data-state="active"] >> text=Deployed.', { timeout });
  const seen = await page.evaluate(() => window.progressSeen);
  log(`progress values seen: ${seen.join(" ")}`);

  log("the deployed system's boot on the console");
  await consolePage.bringToFront();
  await consolePage.waitForSelector(".xterm-rows >> text=METALCAST-CONFIGDRIVE hostname=lab-web", { timeout });
  await consolePage.waitForSelector(".xterm-rows >> text=/keys=1/");
  await consolePage.waitForSelector(".xterm-rows >> text=lab-web login:");
  await shot(consolePage, "lab-dashboard-console");
  if (problems.length) { throw new Error(problems.join("\n")); }
  log("done");
} finally {
  await browser.close();
}
