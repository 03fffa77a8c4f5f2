// The day's operations from the console in headless Chromium, as a new operator does them with
// only the console: WeCom set up against the sandbox, a live code made, a chart bar saved as a
// segment, a coupon template made and issued to it, a mass message's reach previewed and the
// message scheduled, an SOP post scheduled, a coupon redeemed by store staff, and an SMS recall
// that reaches the approval size waiting for a second admin.
// Usage: node operations.mjs BASE_URL TENANT PASSWORD WECOM_URL CORP_ID SECRET TOKEN AES_KEY SCREENSHOT_DIR COUPON_CODE
import { check, launch } from './browser.mjs';

const [base, tenant, password, wecomUrl, corpId, secret, token, aesKey, shots, couponCode] = process.argv.slice(2);

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
  // Its QR downloads at print size, named after the code.
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('#code-table .qr-png')]);
  check(png.suggestedFilename() === '活码-静安店活码.png', 'the QR downloads as a PNG named after the code: ' + png.suggestedFilename());
  await png.saveAs(shots + '/live-code-qr.png');
  // Changed: another guide on duty, WeCom follows at once.
  await page.click('#code-table .code-edit');
  await page.waitForSelector('#code-editing');
  check(await page.locator('#new-code input[name=guides]').inputValue() === 'ba_li, ba_wang', 'the form opens with the code in it');
  await page.locator('#new-code input[name=guides]').fill('ba_wang');
  await page.click('#create-code');
  await page.waitForSelector('#code-notice');
  check((await page.textContent('#code-table')).includes('ba_wang') && !(await page.textContent('#code-table .code-row td:nth-child(4)')).includes('ba_li'), 'the change is saved and WeCom serves the new guide');
  await page.screenshot({ path: shots + '/live-code-changed.png', fullPage: true });

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
  await page.locator('#new-mass #mass-create').click();
  await page.waitForSelector('#mass-table');
  check((await page.textContent('#mass-table')).includes('新品上市'), 'the mass message is scheduled and listed');

  // The group made a VIP group, then an SOP post for VIP groups tomorrow at 20:00, weekly.
  const kindForm = page.locator('#group-table form.group-kind').first();
  await kindForm.locator('select[name=kind]').selectOption('vip');
  await kindForm.locator('button').click();
  await page.waitForURL('**/console/connect#group-table');
  check(await page.locator('#group-table select[name=kind]').first().inputValue() === 'vip', 'the group is a VIP group now');
  const due = new Date(Date.now() + 86400000);
  const pad = (n) => String(n).padStart(2, '0');
  const dueText = `${due.getFullYear()}-${pad(due.getMonth() + 1)}-${pad(due.getDate())}T20:00`;
  const sop = page.locator('#new-sop');
  await sop.locator('input[name=name]').fill('周三会员日');
  await sop.locator('select[name=group_kind]').selectOption('vip');
  await sop.locator('input[name=due_at]').fill(dueText);
  await sop.locator('input[name=text]').fill('今晚 8 点会员日，满 300 减 50');
  await sop.locator('input[name=repeat_every_days]').fill('7');
  await sop.locator('#sop-create').click();
  await page.waitForSelector('#sop-table');
  check((await page.textContent('#sop-table')).includes('周三会员日'), 'the SOP post is on the calendar');
  await page.screenshot({ path: shots + '/sop.png', fullPage: true });

  // Every recall waits for a second admin (the brand sets the size; the demo's 5,000 is one).
  await page.goto(base + '/console/policy');
  await page.locator('#approval-form input[name=approval_from]').fill('1');
  await page.locator('#approval-save').click();
  await page.waitForURL('**/console/policy**');
  check((await page.textContent('#approval-now')).includes('达到 1 人时'), 'the approval size is saved: ' + (await page.textContent('#approval-now')));
  await page.goto(base + '/console/acquire');
  const camp = page.locator('#new-campaign');
  await camp.locator('input[name=name]').fill('老客召回');
  await camp.locator('textarea[name=variant_a]').fill('【品牌丁】老朋友，回归券已到账 {link} 拒收请回复R');
  await camp.locator('input[name=target_url]').fill('https://shop.example.cn/back');
  await camp.locator('button[type=submit]').click();
  await page.waitForSelector('.launch-form button');
  await page.locator('.launch-form button').first().click();
  await page.waitForSelector('.approve-form, .campaign-status');
  check((await page.textContent('.campaign-status')).includes('待审批'), 'the recall waits for approval: ' + (await page.textContent('.campaign-status')));
  check(await page.locator('.approve-form').count() === 0, 'the admin who asked cannot approve their own send');
  const second = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const checker = await signIn(second, 'checker');
  checker.on('dialog', (d) => d.accept());
  await checker.goto(base + '/console/acquire');
  await checker.locator('.approve-form button').first().click();
  await checker.waitForLoadState('load');
  await checker.goto(base + '/console/acquire');
  const after = await checker.textContent('.campaign-status');
  check(!after.includes('待审批'), 'a second admin approved it: ' + after.trim());
  await checker.screenshot({ path: shots + '/approved.png', fullPage: true });

  // Store staff redeem the code a customer shows.
  const store = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const clerk = await signIn(store, 'clerk');
  await clerk.goto(base + '/console/coupons');
  const redeem = clerk.locator('#redeem-form');
  await redeem.locator('input[name=code]').fill(couponCode);
  await redeem.locator('input[name=order_ref]').fill('POS-20261205-1');
  await redeem.locator('input[name=amount]').fill('350');
  await redeem.locator('input[name=store_id]').fill('SH-01');
  await redeem.locator('#redeem-submit').click();
  await clerk.waitForSelector('#coupon-notice');
  check((await clerk.textContent('#coupon-notice')).includes('核销成功'), 'store staff redeem the code: ' + (await clerk.textContent('#coupon-notice')));
  await clerk.screenshot({ path: shots + '/redeemed.png', fullPage: true });
  console.log('all operations checks passed');
} catch (e) {
  if (page) await page.screenshot({ path: shots + '/operations-failure.png', fullPage: true }).catch(() => {});
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
