// Drives a package card's landing page in headless Chromium at a phone's size: the refusals a
// buyer can meet, in Chinese only, then the claim and the guide's WeCom QR.
// Usage: node card.mjs BASE_URL CARD_CODE PHONE OTP SCREENSHOT_DIR
import { check, launch } from './browser.mjs';

const [base, card, phone, otp, shots] = process.argv.slice(2);

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  page = await context.newPage();
  const message = async (text) => {
    await page.waitForFunction((t) => document.getElementById('msg').textContent.includes(t), text);
    return page.textContent('#msg');
  };

  await page.goto(`${base}/c/${card}`);
  check((await page.textContent('h1')).includes('领取礼品'), 'the card page opens in Chinese');
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the page fits a phone screen');

  await page.fill('#phone', '12345');
  await page.click('#send');
  const refused = await message('请输入正确的手机号');
  check(!/[A-Za-z]{2,}/.test(refused), 'a bad phone number is refused in Chinese only');
  check(!refused.includes('('), "the server's own English words are not shown to the customer");

  // The harness asked for a code for this phone a moment ago: a second one is refused.
  await page.fill('#phone', phone);
  await page.click('#send');
  await message('一分钟后再试');
  check(true, 'asking again within a minute is refused with what to do');

  // Another number: the page solves the human check in the browser and the code is sent.
  await page.fill('#phone', '13987654321');
  await page.click('#send');
  await message('验证码已发送');
  check(true, 'the page passes the human check and a code is sent');
  await page.fill('#phone', phone);

  await page.fill('#otp', otp === '000000' ? '111111' : '000000');
  await page.click('#claim');
  await message('验证码错误');
  check(true, 'a wrong code is refused');

  await page.fill('#otp', otp);
  await page.click('#claim');
  const done = await message('领取成功');
  check(/^券码 [A-Z0-9]{10}$/.test(await page.textContent('#done .coupon-code')), 'the right code claims the gift and shows the coupon: ' + done);
  await page.waitForSelector('#done img');
  check((await page.textContent('#done')).includes('添加您的专属顾问'), "the guide's WeCom QR follows the claim");
  await page.screenshot({ path: shots + '/card-claimed.png', fullPage: true });

  const words = await page.evaluate(() => {
    const main = document.querySelector('main').cloneNode(true);
    main.querySelectorAll('.coupon-code, .note, script').forEach((e) => e.remove());
    return (main.textContent.match(/[A-Za-z]{2,}/g) || []);
  });
  check(words.length === 0, 'the card page is Chinese only: ' + words.join(' '));
  await page.reload();
  check((await page.textContent('body')).includes('礼品已领取'), 'the card, scanned again, says it was claimed');
  console.log('all card checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: shots + '/card-failure.png', fullPage: true }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
