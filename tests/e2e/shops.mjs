// Channel data from the console in headless Chromium: an admin connects a Tmall shop by the
// seller's authorisation (the form, the page that sends the browser on, the platform's page, the
// callback) and uploads a JD order export (its progress and what the import waits on), then sees
// the shop and the receipt on the overview.
// Usage: node shops.mjs BASE_URL TENANT USER PASSWORD PLATFORM_BASE APP_KEY APP_SECRET EXPORT_FILE SCREENSHOT_DIR
import { check, launch } from './browser.mjs';

const [base, tenant, user, password, platformBase, appKey, appSecret, exportFile, shots] = process.argv.slice(2);

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  const blocked = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) blocked.push(m.text()); });

  await page.goto(base + '/console/login');
  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('#login-submit');
  await page.waitForURL('**/console/overview');

  // Connecting a shop: the form is open while no shop is connected.
  check(await page.isVisible('#connect-shop-form'), 'the connect form is offered while no shop is connected');
  check((await page.textContent('#callback-url')).endsWith('/console/shops/authorized'), 'the callback to register is shown');
  await page.selectOption('#connect-shop-form select[name=platform]', 'tmall');
  await page.fill('#connect-shop-form input[name=app_key]', appKey);
  await page.fill('#connect-shop-form input[name=app_secret]', appSecret);
  await page.fill('#connect-shop-form input[name=sync_days]', '1');
  await page.fill('#connect-shop-form input[name=api_base]', platformBase);
  await page.screenshot({ path: shots + '/connect-form.png', fullPage: true });
  await Promise.all([
    page.waitForURL('**/console/overview#channel-data', { timeout: 15000 }),
    page.click('#connect-shop-form button[type=submit]'),
  ]);
  check(blocked.length === 0, 'no step of the trip to the platform and back was blocked by the page policy: ' + blocked.join(' | '));
  const shops = await page.textContent('#shop-table');
  check(shops.includes('天猫/淘宝测试旗舰店'), 'the authorised shop is listed by its platform name');
  await page.screenshot({ path: shots + '/shop-connected.png', fullPage: true });

  // Uploading an export: the preset by its Chinese name, then the receipt.
  check((await page.locator('#upload-preset option', { hasText: '京东' }).count()) === 1, 'presets are named in Chinese');
  await page.click('#upload-button');
  check((await page.textContent('#upload-status')).includes('请先选择'), 'an upload without a file says what is missing');
  await page.selectOption('#upload-preset', 'jd');
  await page.setInputFiles('#upload-file', exportFile);
  await page.click('#upload-button');
  await page.waitForFunction(() => document.getElementById('upload-status').textContent.includes('导入完成'), null, { timeout: 30000 });
  const done = await page.textContent('#upload-status');
  check(done.includes('被拒 1 行'), 'the upload says what it imported and refused: ' + done);
  await page.waitForSelector('a.rejected-link', { timeout: 10000 });
  const receipts = await page.textContent('#receipt-table');
  check(receipts.includes('orders.csv') && receipts.includes('导入文件'), 'the receipt is listed after the page reloads');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.rejected-link')]);
  const path = await download.path();
  const text = (await import('node:fs')).readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  check(text.startsWith('行号,列,原因'), 'the rejected rows download with the console session');
  await page.screenshot({ path: shots + '/export-uploaded.png', fullPage: true });
  console.log('all channel data checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: shots + '/shops-failure.png', fullPage: true }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
