// Drives the H5 pages (flash sale, coupon, group buy, bargain) in headless Chromium at a phone's
// size, as a customer would; every page speaks Chinese only.
// Usage: node h5.mjs BASE_URL CUSTOMER_TOKEN UPCOMING_SALE_ID LIVE_SALE_ID SCREENSHOT_DIR COUPON_TEMPLATE_ID GROUP_BUY_ID BARGAIN_ITEM_ID
import { check, launch } from './browser.mjs';

const [base, token, soon, live, shots, couponTemplate, groupBuy, bargainItem] = process.argv.slice(2);
// Latin words a customer would see, other than coupon codes and order numbers (which are ids).
const latin = (p) => p.evaluate(() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('.coupon-code').forEach((e) => e.remove());
  return (main.textContent.match(/[A-Za-z0-9]+/g) || []).filter((w) => /[A-Za-z]{2,}/.test(w) && !/\d/.test(w));
});

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  page = await context.newPage();
  const t = encodeURIComponent(token);

  await page.goto(`${base}/h5/flash/${soon}?t=${t}`);
  await page.waitForFunction(() => document.getElementById('countdown')?.textContent.includes('距开始'));
  check(!page.url().includes('t='), 'the address keeps no token once the page is open');
  const first = await page.textContent('#countdown');
  // Ticks within a few seconds even on a busy machine; never ticking fails here.
  await page.waitForFunction((f) => document.getElementById('countdown').textContent !== f, first, { timeout: 5000 });
  check(true, 'the countdown to the start ticks');
  check(await page.isDisabled('#action'), 'before the start the buy button is disabled');
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the page fits a phone screen');
  await page.screenshot({ path: shots + '/flash-soon.png', fullPage: true });

  await page.goto(`${base}/h5/flash/${live}?t=${t}`);
  await page.waitForFunction(() => document.getElementById('action')?.textContent.includes('立即抢购'));
  check((await page.textContent('#left')).includes('剩余 5 件'), 'the units left are shown');
  await page.click('#action');
  await page.waitForFunction(() => document.getElementById('countdown')?.textContent.includes('已抢到'));
  check((await page.textContent('#action')).includes('¥99.00'), 'a reservation asks to pay the flash price');
  check((await page.textContent('#left')).includes('剩余 4 件'), 'the units left count the reservation');
  const payBy = await page.textContent('#countdown');
  await page.waitForFunction((f) => document.getElementById('countdown').textContent !== f, payBy, { timeout: 5000 });
  check(true, 'the time left to pay ticks');
  await page.screenshot({ path: shots + '/flash-reserved.png', fullPage: true });
  await page.click('#action');
  await page.waitForFunction(() => document.getElementById('msg')?.textContent.includes('FS'));
  check((await page.textContent('#countdown')).includes('支付成功'), 'paying confirms on the page');

  await page.reload();
  await page.waitForFunction(() => document.getElementById('action')?.textContent.includes('已购买'));
  check(true, 'after a reload the page remembers the purchase');

  await page.goto(`${base}/h5/coupons/${couponTemplate}?t=${t}`);
  await page.waitForFunction(() => document.getElementById('action')?.textContent.includes('立即领取'));
  check((await page.textContent('#rule')).includes('满 ¥300.00'), 'the coupon page shows its threshold');
  await page.waitForSelector('#brand');
  check((await page.textContent('#brand')) === '品牌乙', "the page carries the brand's name");
  await page.click('#action');
  await page.waitForFunction(() => document.querySelector('.coupon-code'));
  check((await page.textContent('#action')).includes('已领取'), 'a claimed coupon shows its code and cannot be claimed twice');
  await page.screenshot({ path: shots + '/coupon.png', fullPage: true });

  check((await latin(page)).length === 0, 'the coupon page is Chinese only: ' + (await latin(page)).join(' '));

  // A group buy shows what it is before a team is opened.
  await page.goto(`${base}/h5/group-buys/${groupBuy}?t=${t}`);
  await page.waitForFunction(() => document.getElementById('action')?.textContent.includes('开团'));
  check((await page.textContent('#title')) === '明前龙井礼盒', 'the group buy names its product');
  check((await page.textContent('#price')) === '69.00' && (await page.textContent('#orig')) === '¥129.00', 'the team price beside the usual one');
  check((await page.textContent('#rule')).includes('3 人成团') && (await page.textContent('#rule')).includes('60 分钟'), 'the team size and how long a team has to fill');
  check((await latin(page)).length === 0, 'the group-buy page is Chinese only: ' + (await latin(page)).join(' '));
  await page.screenshot({ path: shots + '/group-buy.png', fullPage: true });

  // So does a bargain.
  await page.goto(`${base}/h5/bargain-items/${bargainItem}?t=${t}`);
  await page.waitForFunction(() => document.getElementById('action')?.textContent.includes('开始砍价'));
  check((await page.textContent('#title')) === '补水面膜' && (await page.textContent('#price')) === '199.00', 'the bargain names its product and price');
  check((await page.textContent('#rule')).includes('邀请 5 位好友') && (await page.textContent('#rule')).includes('¥9.90'), 'how many friends, down to what floor');
  check((await latin(page)).length === 0, 'the bargain page is Chinese only: ' + (await latin(page)).join(' '));
  await page.click('#action');
  await page.waitForURL('**/h5/bargains/*');
  await page.waitForFunction(() => document.getElementById('progress')?.textContent.includes('已砍 0/5'));
  check((await latin(page)).length === 0, 'a started bargain is Chinese only: ' + (await latin(page)).join(' '));
  await page.screenshot({ path: shots + '/bargain.png', fullPage: true });

  await page.goto(`${base}/h5/flash/${live}?t=forged`);
  await page.waitForFunction(() => document.getElementById('msg')?.textContent.length > 0);
  check((await page.textContent('#msg')).includes('链接已失效'), 'a bad link says so in plain words');
  console.log('all H5 checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: shots + '/h5-failure.png', fullPage: true }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
