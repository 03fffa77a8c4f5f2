// The day's operations from the console in headless Chromium, as a new operator does them with
// only the console: WeCom set up against the sandbox, a live code made, a chart bar saved as a
// segment, a coupon template made and issued to it, and a mass message's reach previewed.
// Usage: node operations.mjs BASE_URL TENANT PASSWORD WECOM_URL CORP_ID SECRET TOKEN AES_KEY SCREENSHOT_DIR
import { check, launch } from './browser.mjs';

const [base, tenant, password, wecomUrl, corpId, secret, token, aesKey, shots] = process.argv.slice(2);

const browser = await launch();
let page;
async function signIn(context, user) {
  const p = await context.newPage();
  await p.goto(base + '/console/login');
  await p.fill('input[name=tenant]', tenant);
  await p.fill('input[name=username]', user);
  await p.fill('input[name=password]', password);
  await p.click('#login-submit');
  await p.waitForURL('**/console/overview');
  return p;
}
try {
  const boss = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await signIn(boss, 'boss');
  page.on('dialog', (d) => d.accept());

  // WeCom set up: a wrong secret is refused and not saved; the right one connects.
  await page.goto(base + '/console/connect');
  check((await page.textContent('#wecom-callback')).includes('/callbacks/wecom/'), 'the callback address to paste is shown');
  const wecom = page.locator('#wecom-form');
  await wecom.locator('input[name=corp_id]').fill(corpId);
  await wecom.locator('input[name=secret]').fill('not-the-secret');
  await wecom.locator('input[name=token]').fill(token);
  await wecom.locator('input[name=encoding_aes_key]').fill(aesKey);
  await wecom.locator('input[name=base_url]').fill(wecomUrl);
  await wecom.locator('#wecom-save').click();
  await page.waitForSelector('.form-error');
  check((await page.textContent('.form-error')).includes('设置没有保存'), 'a wrong secret is refused before it replaces anything');
  const again = page.locator('#wecom-form');
  await again.locator('input[name=secret]').fill(secret);
  await again.locator('input[name=token]').fill(token);
  await again.locator('input[name=encoding_aes_key]').fill(aesKey);
  await again.locator('input[name=base_url]').fill(wecomUrl);
  await again.locator('#wecom-save').click();
  await page.waitForSelector('#wecom-notice');
  check((await page.textContent('#wecom-notice')).includes('连接正常'), 'the connection is tested and said to work');
  await page.screenshot({ path: shots + '/wecom.png', fullPage: true });

  // A live code.
  const code = page.locator('#new-code');
  await code.locator('input[name=name]').fill('静安店活码');
  await code.locator('select[name=source]').selectOption('store');
  await code.locator('input[name=guides]').fill('ba_li, ba_wang');
  await code.locator('input[name=backup_userid]').fill('ba_zhao');
  await code.locator('input[name=welcome]').fill('欢迎光临，回复 1 领新人券');
  await code.locator('#create-code').click();
  await page.waitForURL('**/console/connect#code-table');
  check((await page.textContent('#code-table')).includes('静安店活码'), 'the live code is listed with its QR');

  // A chart bar becomes a segment with a snapshot.
  await page.goto(base + '/console/rfm');
  const bar = page.locator('form.bar-segment button').first();
  const barText = await bar.textContent();
  await bar.click();
  await page.waitForURL(/\/console\/segments\/\d+$/);
  check(barText.includes('→'), 'a group of the chart is a button: ' + barText.trim());
  await page.screenshot({ path: shots + '/bar-segment.png', fullPage: true });

  // A coupon template, issued to that snapshot.
  await page.goto(base + '/console/coupons');
  const t = page.locator('#new-template');
  await t.locator('input[name=name]').fill('满300减30');
  await t.locator('input[name=value]').fill('30');
  await t.locator('input[name=threshold]').fill('300');
  await t.locator('input[name=valid_days]').fill('30');
  await t.locator('input[name=total]').fill('100');
  await t.locator('select[name=claim_via]').selectOption('api');
  await t.locator('#create-template').click();
  await page.waitForSelector('#coupon-notice');
  const row = await page.textContent('#template-table');
  check(row.includes('减 ¥30.00') && row.includes('满 ¥300.00') && row.includes('领取后 30 天'), 'the template reads as an operator reads it');
  await page.locator('form.issue-form button').first().click();
  await page.waitForSelector('#coupon-notice');
  const issued = await page.textContent('#coupon-notice');
  check(/已发放 [1-9]\d* 张/.test(issued), 'issued to the snapshot: ' + issued);
  await page.screenshot({ path: shots + '/coupons.png', fullPage: true });
  check(await page.isVisible('#redeem-form'), 'the in-store redemption form is offered');

  // A mass message's reach, before anything is scheduled.
  await page.goto(base + '/console/connect');
  const mass = page.locator('#new-mass');
  await mass.locator('input[name=name]').fill('新品上市');
  await mass.locator('input[name=text]').fill('新品到店，来店试用');
  await mass.locator('#mass-preview').click();
  await page.waitForSelector('#mass-reach');
  check((await page.textContent('#mass-reach')).startsWith('预览：人群'), 'the reach is previewed before anything is scheduled');
  await page.screenshot({ path: shots + '/mass-preview.png', fullPage: true });
  console.log('all operations checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: shots + '/operations-failure.png', fullPage: true }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
