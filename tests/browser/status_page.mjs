// Loads b24ch's status page in headless Debian chromium, checks it, saves a screenshot.
//   node status_page.mjs URL TOKEN SCREENSHOT_PATH  → prints JSON {entities, rowBars, budgetBars}
import { createRequire } from 'module';
const require = createRequire(process.env.B24CH_NODE_MODULES + '/');
const { chromium } = require('playwright-core');

const [url, token, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  const resp = await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#entities tr[data-entity]');
  const entities = await page.$$eval('#entities tr[data-entity]', rows => rows.map(r => r.dataset.entity));
  const rowBars = await page.$eval('#rows-chart', c => Number(c.dataset.bars || 0));
  const budgetBars = await page.$eval('#budget-chart', c => Number(c.dataset.bars || 0));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ status: resp.status(), entities, rowBars, budgetBars, errors }));
} finally {
  await browser.close();
}
