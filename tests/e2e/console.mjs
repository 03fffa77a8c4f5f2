// Drives the Siyu console in headless Chromium like an operator would.
// Usage: node console.mjs BASE_URL TENANT USER PASSWORD PHONE SCREENSHOT_DIR
import { check, launch } from './browser.mjs';

const [base, tenant, user, password, phone, shots] = process.argv.slice(2);
const masked = phone.slice(0, 3) + '****' + phone.slice(7);

const browser = await launch();
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
  // The last 30 days hold two of the three orders; the chart is drawn in the browser from them.
  check((await page.textContent('#kpi-orders')).trim() === '2', 'the overview counts the orders of the last 30 days');
  await page.waitForSelector('#sales-chart[data-drawn="1"] canvas');
  check(await page.isHidden('#trend-status'), 'the trend chart is drawn and no longer says it is loading');
  // Hovering the day of the ¥99 order shows its GMV in the tooltip.
  const box = await page.locator('#sales-chart canvas').first().boundingBox();
  const x = await page.evaluate(() => {
    const data = JSON.parse(document.getElementById('trend-data').textContent);
    const day = data.days.find((d) => d.gmv === 9900).day;
    return echarts.getInstanceByDom(document.getElementById('sales-chart')).convertToPixel({ xAxisIndex: 0 }, day);
  });
  await page.mouse.move(box.x + x, box.y + box.height / 2);
  await page.waitForFunction(() => [...document.querySelectorAll('#sales-chart div')].some((d) => d.textContent.includes('99.00')));
  await page.screenshot({ path: shots + '/overview.png', fullPage: true });
  await page.click('text=近 7 天');
  await page.waitForURL('**/console/overview?from=*');
  check((await page.textContent('#kpi-orders')).trim() === '2', 'the last 7 days hold the two recent orders');
  await page.goto(base + '/console/overview?from=2026-02-30&to=2026-03-01');
  check((await page.textContent('#range-error')).includes('开始日期'), 'a date that does not exist is refused, naming the field');

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

  // Layering: a tag from a list, the RFM chart, a segment built with a live count.
  await page.click('nav.side >> text=标签');
  await page.waitForURL('**/console/tags');
  await page.fill('#new-tag input[name=group]', '兴趣');
  await page.fill('#new-tag input[name=name]', '敏感肌');
  await page.click('#create-tag');
  await page.waitForURL('**/console/tags');
  check((await page.locator('.tag-row').count()) === 1, 'an operator creates a tag');
  await page.fill('#upload-list', phone.slice(0, 3) + ' ' + phone.slice(3, 7) + ' ' + phone.slice(7) + '\n13900000000\nnot-a-phone\n');
  await page.click('#upload-submit');
  await page.waitForSelector('#upload-result');
  check((await page.textContent('#upload-result')).trim().endsWith(': 1'), 'an uploaded list tags the customer it names');
  const problems = await page.textContent('#upload-problems');
  check(problems.includes('13900000000') && problems.includes('not-a-phone'), 'lines that name no one are reported with their reason');
  check((await page.textContent('.tag-members')).trim() === '1', 'the tag counts its member at once');
  await page.screenshot({ path: shots + '/tags.png', fullPage: true });

  await page.click('nav.side >> text=RFM 分层');
  await page.waitForURL('**/console/rfm');
  check((await page.locator('.rfm-bar').count()) === 8, 'the RFM chart shows the eight classes');
  const counts = await page.$$eval('.rfm-bar', (bars) => bars.map((b) => Number(b.dataset.count)));
  check(counts.reduce((a, b) => a + b, 0) === 2, 'every buyer is in one RFM class');
  check((await page.textContent('#rfm-chart')).includes('重要价值客户'), 'classes carry their Chinese names');
  await page.screenshot({ path: shots + '/rfm.png', fullPage: true });
  // A bar opens the list of the customers behind it, the same count.
  const bar = page.locator('.rfm-bar:not([data-count="0"])').first();
  const behind = await bar.getAttribute('data-count');
  await bar.click();
  await page.waitForURL('**/console/customers?class=*');
  check((await page.textContent('#filter-total')).trim().endsWith(' ' + behind), 'a bar opens its customers, the same count: ' + (await page.textContent('#filter-total')));
  await page.goto(base + '/console/rfm');

  await page.click('nav.side >> text=会员');
  await page.waitForURL('**/console/members');
  check((await page.locator('.member-row').count()) === 1, 'the member list shows the member who joined in store');
  check((await page.textContent('#coupon-table')).includes('满300减30'), 'coupon templates are listed with their report');
  await page.screenshot({ path: shots + '/members.png', fullPage: true });

  // Activities: a flash sale created from the form; a bad amount is refused by name.
  await page.click('nav.side >> text=活动');
  await page.waitForURL('**/console/activities');
  check((await page.textContent('h2')).includes('营销活动'), 'the activities page opens');
  const flash = page.locator('#new-flash');
  await flash.locator('input[name=name]').fill('双12秒杀');
  await flash.locator('input[name=sku]').fill('CREAM-50');
  await flash.locator('input[name=title]').fill('修护面霜');
  await flash.locator('input[name=price]').fill('九十九');
  await flash.locator('input[name=starts_at]').fill('2026-12-12T20:00');
  await flash.locator('input[name=ends_at]').fill('2026-12-12T22:00');
  await flash.locator('button').click();
  await page.waitForSelector('.activity-error');
  check((await page.textContent('.activity-error')).startsWith('价格：「九十九」不是金额'), 'a bad price is refused by its Chinese name: ' + (await page.textContent('.activity-error')));
  check(await page.locator('#new-flash input[name=title]').inputValue() === '修护面霜', 'what was typed is kept beside the refusal');
  const again = page.locator('#new-flash');
  await again.locator('input[name=name]').fill('双12秒杀');
  await again.locator('input[name=sku]').fill('CREAM-50');
  await again.locator('input[name=title]').fill('修护面霜');
  await again.locator('input[name=price]').fill('99.00');
  await again.locator('input[name=original_price]').fill('299');
  await again.locator('input[name=stock]').fill('500');
  await again.locator('input[name=starts_at]').fill('2026-12-12T20:00');
  await again.locator('input[name=ends_at]').fill('2026-12-12T22:00');
  await again.locator('button').click();
  await page.waitForSelector('.flash-row');
  const row = await page.textContent('.flash-row');
  check(row.includes('双12秒杀') && row.includes('99.00') && row.includes('2026-12-12 20:00'), 'the new flash sale is listed with its price and China-time window');
  check((await page.textContent('.flash-left')).trim() === '500', 'all its stock is left');
  await page.screenshot({ path: shots + '/activities.png', fullPage: true });

  // Acquire: campaigns and card batches with their figures (none yet here).
  await page.click('nav.side >> text=拉新召回');
  await page.waitForURL('**/console/acquire');
  check((await page.textContent('h2')).includes('拉新召回'), 'the acquire page opens');
  check((await page.textContent('main')).includes('开放接口（API）'), 'it says where the options the console lacks are set');
  check((await page.textContent('#no-snapshot')).includes('人群'), 'without a snapshot the campaign form says to take one first');
  const batch = page.locator('#new-batch');
  check((await batch.locator('select[name=coupon_template_id]').textContent()).includes('满300减30'), 'the card-batch form offers the coupon template set up for cards as the hook');
  await batch.locator('input[name=name]').fill('双12包裹卡');
  check(await batch.locator('select[name=channel]').inputValue() === 'tmall' && (await batch.locator('select[name=channel]').textContent()).includes('天猫'), 'the marketplace of a batch is chosen by its Chinese name');
  await batch.locator('input[name=size]').fill('200');
  await batch.locator('input[name=variants]').fill('红卡，蓝卡');
  await batch.locator('input[name=cost_per_card]').fill('0.30');
  await batch.locator('button').click();
  await page.waitForSelector('.batch-row');
  const batchRow = await page.textContent('.batch-row');
  check(batchRow.includes('双12包裹卡') && batchRow.includes('天猫') && batchRow.includes('PDF'), 'the new card batch is listed with its PDF for the printing shop');
  const pdf = await page.request.get(new URL(await page.getAttribute('.batch-row a:has-text("PDF")', 'href'), page.url()).href);
  check(pdf.status() === 200 && pdf.headers()['content-type'] === 'application/pdf', 'the PDF link downloads the print file with the console session');

  // WeCom: the live code with its add, the group and its retention by join week.
  await page.click('nav.side >> text=企微承接');
  await page.waitForURL('**/console/connect');
  check((await page.textContent('h2')).includes('企微承接'), 'the WeCom page opens');
  const codeRow = await page.textContent('.code-row');
  check(codeRow.includes('静安店活码') && codeRow.includes('ba_li'), 'the live code is listed with its guide on duty');
  check((await page.textContent('.code-row .welcome')).includes('欢迎'), 'and its welcome message');
  check((await page.textContent('.code-row .net')).trim() === '1', 'its one add counts as net 1');
  check(await page.locator('.code-row img').evaluate((img) => img.complete && img.naturalWidth > 0), 'its QR image loads');
  check((await page.textContent('.group-row')).includes('VIP 福利群'), 'the group is listed');
  check((await page.textContent('.group-row')).includes('普通群') && codeRow.includes('门店'), 'kinds and sources are named in Chinese');
  const cohort = await page.textContent('.cohort-row');
  check(cohort.includes('100%') && cohort.includes('50%'), 'retention shows week 1 kept by both and later weeks by one');
  check((await page.getAttribute('#retention-line polyline', 'points')).split(' ').length >= 4, 'the average line is drawn');
  await page.screenshot({ path: shots + '/connect.png', fullPage: true });

  await page.click('nav.side >> text=人群');
  await page.waitForURL('**/console/segments');
  await page.click('#new-segment');
  await page.waitForURL('**/console/segments/new');
  await page.waitForFunction(() => /^\d+$/.test(document.querySelector('#live-count').textContent));
  const everyone = Number(await page.textContent('#live-count'));
  check(everyone === 3, 'an empty rule counts everyone (two buyers and the WeCom contact)');
  await page.click('#add-condition');
  await page.selectOption('.cond-type', 'order_count');
  await page.fill('.cond-min', '2');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  check(true, 'the count follows the conditions while typing');
  // Orders on one channel: the buyer's two orders are both on Tmall.
  await page.click('#add-condition');
  const byChannel = page.locator('.cond').nth(1);
  await byChannel.locator('.cond-type').selectOption('channel_orders');
  await byChannel.locator('.cond-channel').selectOption('tmall');
  await byChannel.locator('.cond-min').fill('2');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await byChannel.locator('.cond-min').fill('3');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '0');
  check((await page.textContent('#rule-json')).includes('"channel_orders"'), '"2+ orders on Tmall" is a condition of the builder (1), "3+" matches no one');
  await byChannel.locator('.cond-remove').click();
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  // A group inside the list: the buyer is 活跃, so "any of 活跃, 休眠" keeps them and "any of
  // 休眠, 流失" does not.
  await page.click('#add-group');
  const grp = page.locator('.cond-group').first();
  await grp.locator('.group-mode').selectOption('or');
  await grp.locator('.group-add').click();
  await grp.locator('.group-add').click();
  const inner = grp.locator('.group-body > .cond');
  await inner.nth(0).locator('.cond-type').selectOption('stage');
  await inner.nth(0).locator('.cond-value').selectOption('active');
  await inner.nth(1).locator('.cond-type').selectOption('stage');
  await inner.nth(1).locator('.cond-value').selectOption('dormant');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await inner.nth(0).locator('.cond-value').selectOption('churned');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '0');
  check(JSON.parse(await page.textContent('#rule-json')).and.some((r) => r.or && r.or.length === 2), 'a group of conditions nests in the rule, and the count follows it');
  await grp.locator(':scope > .group-head .cond-remove').click();
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await page.check('.cond-not');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await page.uncheck('.cond-not');
  await page.click('#add-condition');
  await page.locator('.cond-type').nth(1).selectOption('tag');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await page.selectOption('#mode', 'or');
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await page.locator('.cond-remove').nth(1).click();
  await page.fill('#segment-name', '复购客户');
  await page.click('#save-segment');
  await page.waitForURL(/\/console\/segments\/\d+$/);
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  check((await page.inputValue('.cond-min')) === '2', 'a saved segment opens in the builder with its conditions');
  // A rule of several figures and values, as the demo's flagship segment is written, opens as
  // rows and groups with none left as raw JSON, and counts the same.
  const savedAt = page.url();
  const flagship = { and: [{ channel: ['tmall', 'jd'] }, { orders: { count: { min: 2 }, aov: { min: 10000 } } },
    { stage: ['active', 'new'] }, { not: { identity: ['external_userid'] } }] };
  const made = await page.evaluate(async (rule) => {
    const r = await fetch('/console/api/segments', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: '天猫京东高客单', rule }) });
    return r.json();
  }, flagship);
  const counted = await page.evaluate(async (rule) => (await (await fetch('/console/api/audience/count', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rule }) })).json()).count, flagship);
  await page.goto(base + '/console/segments/' + made.id);
  await page.waitForFunction((n) => document.querySelector('#live-count').textContent === String(n), counted);
  check((await page.locator('.cond-raw').count()) === 0 && (await page.locator('.cond-group').count()) === 3, 'the flagship-shaped rule is drawn as rows and groups, none raw, same count ' + counted);
  // Attributes of every kind draw too: a list of values, a range, a missing attribute.
  const byAttr = { and: [{ attr: { name: 'city', in: ['上海', '杭州'] } }, { attr: { name: 'age', range: { min: 25, max: 35 } } },
    { attr: { name: 'vip', exists: false } }, { rfm: { class: ['important_value'], r: { min: 4 }, m: { min: 3 } } }] };
  const attrSeg = await page.evaluate(async (rule) => (await (await fetch('/console/api/segments', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: '属性人群', rule }) })).json()), byAttr);
  await page.goto(base + '/console/segments/' + attrSeg.id);
  await page.waitForFunction(() => /^\d+$/.test(document.querySelector('#live-count').textContent));
  check((await page.locator('.cond-raw').count()) === 0 && (await page.inputValue('.cond-min')) === '25', 'attribute lists, ranges and absence, and RFM scores are drawn as rows, none raw');
  await page.goto(savedAt);
  await page.waitForFunction(() => document.querySelector('#live-count').textContent === '1');
  await page.click('#preview');
  await page.waitForSelector('.preview-row');
  const sample = await page.textContent('#preview-rows');
  check(sample.includes(masked) && !sample.includes(phone), 'the sample preview masks phones');
  await page.click('#snapshot');
  await page.waitForSelector('.snapshot-row');
  check((await page.textContent('.snapshot-row')).includes('1'), 'a snapshot freezes the members');
  await page.screenshot({ path: shots + '/segment.png', fullPage: true });

  // Acquire again: an SMS recall made in the form from that snapshot, then launched.
  await page.click('nav.side >> text=拉新召回');
  await page.waitForURL('**/console/acquire');
  const form = page.locator('#new-campaign');
  check((await form.locator('select[name=snapshot_id] option').first().textContent()).includes('复购客户'), 'the campaign form offers the snapshot by its segment');
  await form.locator('input[name=name]').fill('复购召回');
  await form.locator('textarea[name=variant_a]').fill('【品牌甲】老客回归礼 {link}');
  await form.locator('input[name=target_url]').fill('https://shop.example.cn/back');
  await form.locator('button').click();
  await page.waitForSelector('.campaign-error');
  check((await page.textContent('.campaign-error')).startsWith('文案版本 A：须写明退订方式'), 'a text without the opt-out is refused by its Chinese name: ' + (await page.textContent('.campaign-error')));
  check((await page.locator('#new-campaign textarea[name=variant_a]').inputValue()).includes('老客回归礼'), 'the hand-written text is kept');
  const campaign = page.locator('#new-campaign');
  await campaign.locator('input[name=name]').fill('复购召回');
  await campaign.locator('textarea[name=variant_a]').fill('【品牌甲】老客回归礼已到账 {link} 拒收请回复R');
  await campaign.locator('textarea[name=variant_b]').fill('【品牌甲】新品老客价 {link} 拒收请回复R');
  await campaign.locator('input[name=target_url]').fill('https://shop.example.cn/back');
  await campaign.locator('input[name=cost_per_part]').fill('0.05');
  await campaign.locator('button').click();
  await page.waitForSelector('.campaign-row .launch-form');
  const draft = await page.textContent('.campaign-row');
  check(draft.includes('复购召回') && draft.includes('草稿'), 'the new campaign is listed as a draft with its launch button');
  let asked = '';
  page.once('dialog', async (d) => { asked = d.message(); await d.accept(); });
  await page.click('.campaign-row .launch-form button');
  await page.waitForSelector('.launch-notice');
  check(asked.includes('确定发出') && asked.includes('人数：1'), 'the launch button asks first, naming how many people get the SMS');
  check((await page.textContent('.launch-notice')).includes('写入发件箱 1'), "launching it writes the snapshot's one member's message");
  const state = await page.textContent('.campaign-status');
  check((state.includes('发送中') || state.includes('已发完')) && state.includes('已发送'), 'and the campaign says where its message stands: ' + state.trim());
  check((await page.locator('.campaign-row .launch-form').count()) === 0, 'with no launch button left');
  await page.screenshot({ path: shots + '/acquire.png', fullPage: true });

  await page.click('nav.side >> text=人群');
  await page.waitForURL('**/console/segments');
  check((await page.locator('tr', { hasText: '复购客户' }).locator('.segment-count').textContent()).trim() === '1', 'the segment list shows the live count');

  await page.click('#lang-switch');
  await page.waitForLoadState();
  check((await page.textContent('nav.side')).includes('Customers'), 'the English switch translates the console');
  check(page.url().endsWith('/console/segments'), 'switching language stays on the same page');
  check((await page.textContent('#segment-table')).includes('Customers'), 'the segment list is in English too');

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
