// Uses b24ch's status page as a person would, in headless Debian chromium (playwright-core):
// opens the page, is shown the login form, types a wrong token (sees why it failed), then the
// right one; reads what the page shows; checks that no two pieces of text overlap and that
// every bar prints its value; saves screenshots; logs out.
//   node status_page.mjs PAGE_URL TOKEN SCREENSHOT_PREFIX
// Prints one JSON report on stdout (the Rust test compares it with the server's figures).
import { createRequire } from 'module';
const require = createRequire(process.env.B24CH_NODE_MODULES + '/');
const { chromium } = require('playwright-core');

const [url, token, shotPrefix] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { errors: [], steps: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', e => report.errors.push('pageerror: ' + String(e)));
  // The login form is answered with 401 (no session), which chromium notes on the console;
  // those are expected and counted, any other console error is a defect.
  report.unauthorizedLoads = 0;
  page.on('console', m => {
    if (m.type() !== 'error') return;
    if (/Failed to load resource: the server responded with a status of 401/.test(m.text())) report.unauthorizedLoads++;
    else report.errors.push('console: ' + m.text());
  });

  // 1. No session: the login form.
  const first = await page.goto(url, { waitUntil: 'load' });
  report.loginStatus = first.status();
  report.loginFormShown = await page.locator('form[action="/status/login"] input[name=token]').count() === 1;
  report.entitiesBeforeLogin = await page.locator('#entities').count();

  // 2. A wrong token: the form again, with the reason.
  await page.fill('input[name=token]', 'not-the-token');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]);
  report.wrongTokenMessage = (await page.locator('.msg.error').textContent() || '').trim();
  await page.screenshot({ path: `${shotPrefix}-login.png` });

  // 3. The right token: the page.
  await page.fill('input[name=token]', token);
  const [resp] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.click('button[type=submit]'),
  ]);
  report.pageStatus = resp ? resp.status() : null;
  report.pageUrl = page.url();
  await page.waitForSelector('#entities tr[data-entity]');
  const cookies = await context.cookies();
  report.cookies = cookies.map(c => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path, secure: c.secure }));
  report.cookieVisibleToScript = await page.evaluate(() => document.cookie.includes('b24ch_session'));
  report.metaRefresh = await page.evaluate(() => {
    const m = document.querySelector('meta[http-equiv="refresh"]');
    return m ? Number(m.getAttribute('content')) : null;
  });

  report.entities = await page.$$eval('#entities tr[data-entity]', rows => rows.map(r => {
    const f = name => (r.querySelector(`[data-field="${name}"]`)?.textContent || '').replace(/\s+/g, ' ').trim();
    return {
      entity: r.dataset.entity,
      health: r.dataset.health,
      title: (r.querySelector('.title')?.textContent || '').trim(),
      freshness: f('freshness'),
      rows: f('rows'),
      requests: f('requests'),
      operating: f('operating'),
      duration: f('duration'),
      day: f('day'),
      error: f('error'),
      marks: r.querySelectorAll('.mark').length,
    };
  }));
  report.keys = await page.$$eval('#keys tr[data-key]', rows => rows.map(r => ({
    key: r.dataset.key,
    state: r.dataset.state,
    used: (r.querySelector('[data-field="used"]')?.textContent || '').replace(/\s+/g, ' ').trim(),
    calls: (r.querySelector('[data-field="calls"]')?.textContent || '').trim(),
    waits: (r.querySelector('[data-field="waits"]')?.textContent || '').trim(),
    reason: (r.querySelector('td:last-child')?.textContent || '').trim(),
    limitDrawn: r.querySelectorAll('.limit').length,
  })));
  report.problems = await page.$$eval('#problems li.problem', items => items.map(li => ({
    subject: li.dataset.subject,
    text: li.textContent.replace(/\s+/g, ' ').trim(),
  })));
  report.summary = (await page.locator('#summary').textContent() || '').replace(/\s+/g, ' ').trim();

  // No two pieces of text overlap: the boxes of every text fragment on the page, pairwise.
  report.layout = await page.evaluate(() => {
    const boxes = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    let node, id = 0;
    while ((node = walker.nextNode())) {
      const text = node.textContent.trim();
      if (!text) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const b of range.getClientRects()) {
        if (b.width > 0 && b.height > 0) {
          boxes.push({ id, text: text.slice(0, 50), x: b.left + scrollX, y: b.top + scrollY, w: b.width, h: b.height });
        }
      }
      id++;
    }
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.id === b.id) continue;
        const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
        const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
        if (ox > 1 && oy > 1) overlaps.push([a.text, b.text]);
      }
    }
    // Every bar prints its value, beside the bar (not on it).
    const bars = [...document.querySelectorAll('.hbar')].map(h => {
      const track = h.querySelector('.track').getBoundingClientRect();
      const value = h.querySelector('.value');
      const v = value ? value.getBoundingClientRect() : null;
      return { value: value ? value.textContent.trim() : '', beside: v ? v.left >= track.right : false };
    });
    // Nothing wider than the window (no sideways scrolling at 1280 px).
    const tooWide = document.documentElement.scrollWidth > window.innerWidth;
    return { textBoxes: boxes.length, overlaps: overlaps.slice(0, 20), overlapCount: overlaps.length, bars, tooWide };
  });

  await page.screenshot({ path: `${shotPrefix}.png` });
  await page.screenshot({ path: `${shotPrefix}-full.png`, fullPage: true });

  // 4. Log out: the form again, and the page stays closed.
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('form[action="/status/logout"] button')]);
  report.afterLogout = (await page.locator('.msg.info').textContent() || '').trim();
  const again = await page.goto(url, { waitUntil: 'load' });
  report.afterLogoutStatus = again.status();
  report.afterLogoutEntities = await page.locator('#entities').count();
} catch (e) {
  report.errors.push('script: ' + (e && e.stack || String(e)));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
