// Drives the Siyu console in headless Chromium like an operator would.
// Usage: node console.mjs BASE_URL TENANT USER PASSWORD PHONE SCREENSHOT_DIR
import { chromium } from 'playwright-core';

const [base, tenant, user, password, phone, shots] = process.argv.slice(2);
const masked = phone.slice(0, 3) + '****' + phone.slice(7);
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function check(cond, what) {
  if (!cond) throw new Error('FAILED: ' + what);
  console.log('ok - ' + what);
}

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();

  await page.goto(base + '/console');
  check(page.url().endsWith('/console/login'), 'an anonymous visitor is sent to the login page');
  check((await page.textContent('h2')) === '登录', 'the console speaks zh-CN first');

  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'wrong-password');
  await page.click('#login-submit');
  check(await page.isVisible('#login-error'), 'a wrong password is refused with a message');

  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', password);
  await page.click('#login-submit');
  await page.waitForURL('**/console/overview');
  check(Number((await page.textContent('#people')).trim()) >= 1, 'the overview counts people after OneID');
  await page.screenshot({ path: shots + '/overview.png', fullPage: true });

  await page.click('text=客户');
  await page.waitForURL('**/console/customers');
  check((await page.locator('.customer-row').count()) >= 2, 'the customer list shows customers');
  const listText = await page.textContent('#customer-table');
  check(listText.includes(masked) && !listText.includes(phone), 'phones are masked in the list');

  await page.fill('#search', phone.slice(0, 3) + ' ' + phone.slice(3, 7) + ' ' + phone.slice(7));
  await page.click('#search-submit');
  check((await page.locator('.customer-row').count()) === 1, 'searching a phone written with spaces finds one customer');
  await page.click('.customer-row a');
  await page.waitForURL(/\/console\/customers\/\d+$/);
  check((await page.textContent('#order-count')).trim() === '2', 'the customer 360 counts both orders');
  const ids = await page.textContent('#identities');
  check(ids.includes(masked) && !ids.includes(phone), 'the 360 page masks the phone');
  await page.screenshot({ path: shots + '/customer.png', fullPage: true });

  await page.click('#unmask');
  check((await page.textContent('#identities')).includes(phone), 'an admin can reveal the full phone on purpose');

  await page.click('#lang-switch');
  await page.waitForLoadState();
  check((await page.textContent('header nav')).includes('Customers'), 'the English switch translates the console');
  check(/\/console\/customers\/\d+/.test(page.url()), 'switching language stays on the same page');

  await page.click('text=Sign out');
  await page.goto(base + '/console/customers');
  check(page.url().endsWith('/console/login'), 'after signing out the console needs a login again');
  console.log('all console checks passed');
} catch (e) {
  console.error(e.message);
  if (page) await page.screenshot({ path: shots + '/failure.png', fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
