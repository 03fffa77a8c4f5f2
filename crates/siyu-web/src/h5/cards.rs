//! `/c/{code}`: a package-insert card's landing page, its one-time code and its claim.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use siyu::platform::TenantId;

use crate::AppState;
use crate::api::{ApiError, json_body};
use crate::client_ip::ClientIp;
use crate::h5::session;
use siyu::acquire::cards::{self, CardError};
use siyu::acquire::otp;
use siyu::convert::members::{self, JoinRequest, JoinedVia};
use siyu::know::CustomerId;
use siyu::know::buyer_link::{self, LinkError};
use siyu::know::identity::{Identity, IdentityKind};
use siyu::know::phone::Phone;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::CustomerClaim;
use siyu::platform::customer_sessions;
use siyu::platform::db::sql;

/// `GET /c/{code}`: the landing page; counts the scan (once per address in ten minutes).
pub(crate) async fn landing(
    State(app): State<AppState>,
    from: ClientIp,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let (tenant, c) = match cards::card(&app.db, &code).await {
        Ok(x) => x,
        Err(CardError::Code(_) | CardError::NotFound(_)) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Html(page("卡片无效", "<p>请核对卡片上的编码。</p>", "", None)),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let now = now_ms();
    if app.card_scans.first_in_window(c.id, &from.subject(), now) {
        cards::record_scan(&app.db, c.id, now).await?;
    }
    let body = if c.claimed_at.is_some() {
        "<p>这张卡的礼品已领取。</p>".to_string()
    } else {
        format!(
            r#"<p>输入手机号，领取您的专属礼品</p>
<form id="f"><input id="phone" name="phone" inputmode="tel" maxlength="13" placeholder="手机号" required>
<div class="row"><input id="otp" name="otp" inputmode="numeric" maxlength="6" placeholder="验证码">
<button type="button" id="send" class="side">获取验证码</button></div>
<input id="order" name="order_no" maxlength="64" placeholder="订单号（选填，关联您的订单）">
<button type="submit" id="claim">立即领取</button></form><p id="msg" role="status"></p><div id="done"></div>
<script>
const code = {code:?};
const msg = t => document.getElementById('msg').textContent = t;
// What the customer can do about each refusal; the server's own words (English, for
// developers) stay in the answer and are not shown.
const said = {{too_soon: '验证码已发送，请一分钟后再试',
  code_rejected: '验证码错误或已过期，请重新获取',
  claimed: '这张卡的礼品已领取',
  locked: '错误次数过多，请半小时后再试',
  phone_limit: '该号码今天的验证码已用完，请明天再试',
  card_limit: '这张卡已向多个号码发送过验证码',
  rate_limited: '请求过于频繁，请稍后再试',
  sms_budget: '短信暂时无法发送，请稍后再试',
  bad_request: '请输入正确的手机号',
  human_check: '人机验证未通过，请重新获取验证码',
  too_many_requests: '操作过于频繁，请稍后再试',
  unavailable: '系统繁忙，请稍后再试',
  timed_out: '网络较慢，请重试'}};
const why = v => said[v.error.code] || '出错了，请稍后再试';
async function post(path, body) {{
  const r = await fetch('/h5/v1/cards/' + code + path, {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify(body)}});
  return [r.status, await r.json()];
}}
// The human check: find the number whose SHA-256 with the challenge and the phone starts with
// the zero bits asked for (a moment on a phone; the server checks it in one hash).
const K = new Uint32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
function sha256(bytes) {{
  const H = new Uint32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);
  const n = ((bytes.length + 9 + 63) >> 6) << 6, m = new Uint8Array(n);
  m.set(bytes); m[bytes.length] = 0x80;
  const bits = bytes.length * 8; m[n - 4] = bits >>> 24; m[n - 3] = bits >>> 16; m[n - 2] = bits >>> 8; m[n - 1] = bits;
  const w = new Uint32Array(64), r = (x, k) => (x >>> k) | (x << (32 - k));
  for (let o = 0; o < n; o += 64) {{
    for (let i = 0; i < 16; i++) w[i] = (m[o + 4 * i] << 24) | (m[o + 4 * i + 1] << 16) | (m[o + 4 * i + 2] << 8) | m[o + 4 * i + 3];
    for (let i = 16; i < 64; i++) w[i] = w[i - 16] + (r(w[i - 15], 7) ^ r(w[i - 15], 18) ^ (w[i - 15] >>> 3)) + w[i - 7] + (r(w[i - 2], 17) ^ r(w[i - 2], 19) ^ (w[i - 2] >>> 10));
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {{
      const t1 = (h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }}
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }}
  return H;
}}
function solve(challenge, phone, bits) {{
  const enc = new TextEncoder(), mask = bits >= 32 ? 0xffffffff : ~(0xffffffff >>> bits);
  for (let n = 0; ; n++) if ((sha256(enc.encode(challenge + ':' + phone + ':' + n))[0] & mask) === 0) return String(n);
}}
document.getElementById('send').onclick = async () => {{
  const phone = document.getElementById('phone').value, send = document.getElementById('send');
  send.disabled = true;
  msg('正在验证，请稍候…');
  try {{
    const c = await (await fetch('/h5/v1/human-check')).json();
    // As the server reads the number: full-width digits as ASCII, then the last 11 digits.
    const digits = phone.replace(/[\uFF10-\uFF19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xFEE0)).replace(/[^0-9]/g, '');
    const nonce = solve(c.challenge, digits.slice(-11), c.bits);
    const [s, v] = await post('/otp', {{phone, challenge: c.challenge, nonce}});
    msg(s === 202 ? '验证码已发送，请查看短信' : why(v));
  }} finally {{ send.disabled = false; }}
}};
document.getElementById('f').onsubmit = async e => {{
  e.preventDefault();
  const order_no = document.getElementById('order').value.trim() || undefined;
  const [s, v] = await post('/claim', {{phone: document.getElementById('phone').value, otp: document.getElementById('otp').value, order_no}});
  if (s !== 200) {{ msg(why(v)); return; }}
  msg('领取成功' + (v.order ? '，' + v.order.said : ''));
  const done = document.getElementById('done');
  const coupon = document.createElement('div'); coupon.className = 'coupon-code'; coupon.textContent = '券码 ' + v.coupon.code;
  done.appendChild(coupon);
  if (v.contact_qr_url) done.insertAdjacentHTML('beforeend', '<p>添加您的专属顾问</p><img alt="专属顾问企业微信二维码" src="' + encodeURI(v.contact_qr_url) + '">');
}};
</script>"#
        )
    };
    let brand = app.brands.get(&app.db, tenant).await?;
    Ok(Html(page("领取礼品", &body, &c.code, Some(&brand))).into_response())
}

pub(crate) fn page(
    title: &str,
    body: &str,
    code: &str,
    brand: Option<&siyu::platform::brand::Brand>,
) -> String {
    // The look of the other customer pages (activity.html): a white card on grey, in the
    // brand's colour (checked to be a #rrggbb when it was saved) under its name and logo.
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let color = brand.map_or(siyu::platform::brand::DEFAULT_COLOR, |b| b.color.as_str());
    let bar = match brand {
        Some(b) => format!(
            r#"<div class="brandbar" id="brand">{}<span>{}</span></div>"#,
            b.logo_url
                .as_deref()
                .map(|u| format!(r#"<img src="{}" alt="">"#, esc(u)))
                .unwrap_or_default(),
            esc(&b.name)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1,viewport-fit=cover">
<title>{title}</title><style>*{{box-sizing:border-box}}:root{{--brand:{color}}}
body{{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;background:#f6f6f6;color:#222}}
main{{max-width:480px;margin:0 auto;padding:16px}}.card{{background:#fff;border-radius:12px;padding:16px}}
.brandbar{{display:flex;align-items:center;gap:8px;margin:0 0 12px;font-weight:600}}.brandbar img{{height:28px;max-width:120px;object-fit:contain}}
h1{{font-size:20px;margin:0 0 8px}}input{{font-size:16px;padding:12px;margin:6px 0;width:100%;border:1px solid #ddd;border-radius:8px}}
button{{width:100%;min-height:48px;border:0;border-radius:24px;background:var(--brand);color:#fff;font-size:18px;margin-top:8px}}
button:disabled{{background:#ccc}}.row{{display:flex;gap:8px;align-items:center}}.row input{{flex:1}}
button.side{{width:auto;min-height:44px;margin:6px 0;padding:0 14px;font-size:15px;border-radius:8px;background:#fff;color:var(--brand);border:1px solid var(--brand)}}
#msg{{min-height:24px;margin:12px 0 0}}.coupon-code{{font-size:20px;font-weight:600;letter-spacing:1px;color:var(--brand);margin:8px 0}}
#done img{{width:12rem;display:block;margin:8px auto}}.note{{color:#999;font-size:12px;text-align:center;margin-top:12px}}</style></head>
<body><main>{bar}<div class="card"><h1>{title}</h1>{body}</div><p class="note">卡号 {code}</p></main></body></html>"#
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeBody {
    phone: String,
    /// The human check: a challenge from `GET /h5/v1/human-check` and the number that solves it.
    challenge: Option<String>,
    nonce: Option<String>,
}

/// `GET /h5/v1/human-check`: a challenge the page solves before asking for a code.
pub(crate) async fn human_check(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "challenge": app.human_check.challenge(now_ms()),
        "bits": app.human_check.bits(),
    }))
}

pub(crate) async fn brand(app: &AppState, tenant: TenantId) -> Result<String, ApiError> {
    Ok(siyu::platform::brand::name(&app.db, tenant).await?)
}

/// `POST /h5/v1/cards/{code}/otp`: a one-time code to the phone typed on the landing page.
pub(crate) async fn send_code(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
    b: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    // The human check costs one hash: done before the store is asked anything.
    let b = json_body(b)?;
    let phone = Phone::parse(&b.phone).map_err(|e| ApiError::bad_request(format!("phone: {e}")))?;
    app.human_check.verify(
        b.challenge.as_deref(),
        b.nonce.as_deref(),
        phone.as_str(),
        now_ms(),
    )?;
    let (tenant, c) = cards::card(&app.db, &code).await?;
    if c.claimed_at.is_some() {
        return Err(CardError::Claimed.into());
    }
    let brand = brand(&app, tenant).await?;
    otp::request(
        &app.db,
        &app.cipher,
        otp::Sender {
            tenant,
            brand: &brand,
            template_code: app.otp_template.clone(),
        },
        otp::Asker {
            card: Some(c.id),
            address: Some(&ClientIp(ip).subject()),
        },
        &app.otp_limits,
        phone.as_str(),
        "card",
        now_ms(),
    )
    .await?;
    app.outbox.notify();
    Ok((StatusCode::ACCEPTED, Json(json!({"sent": true}))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimBody {
    phone: Option<String>,
    otp: Option<String>,
    /// The order number on the parcel: its order becomes the claimant's when it was placed
    /// with their verified phone (see [`link_parcel_order`]).
    order_no: Option<String>,
}

/// `POST /h5/v1/cards/{code}/claim`: with a verified phone (`phone` and `otp`), or as the
/// customer of a WeChat session (`X-Siyu-Customer`); joins them as a member and grants the
/// card's coupon, once per card.
pub(crate) async fn claim(
    State(app): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    b: Result<Json<ClaimBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (tenant, c) = cards::card(&app.db, &code).await?;
    if c.claimed_at.is_some() {
        return Err(CardError::Claimed.into());
    }
    let b = json_body(b)?;
    let now = now_ms();
    let token = headers.get(session::HEADER).and_then(|v| v.to_str().ok());
    let mut verified = None;
    let customer = match (token, b.phone.as_deref()) {
        (Some(t), _) => match session::verify(&app, t).await? {
            CustomerClaim {
                tenant_id,
                customer_id,
                ..
            } if tenant_id == tenant => customer_id,
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the customer token is for another brand",
                ));
            }
        },
        (None, Some(p)) => {
            let phone =
                Phone::parse(p).map_err(|e| ApiError::bad_request(format!("phone: {e}")))?;
            let code = b.otp.as_deref().ok_or_else(|| {
                ApiError::bad_request("otp: the code sent to the phone is required")
            })?;
            otp::verify(
                &app.db,
                &app.cipher,
                tenant,
                phone.as_str(),
                "card",
                code,
                now,
            )
            .await?;
            let identity = Identity::new(IdentityKind::Phone, phone.as_str(), None)
                .map_err(|e| ApiError::bad_request(format!("phone: {e}")))?;
            let (m, _) = members::join(
                &app.db,
                &app.cipher,
                tenant,
                &JoinRequest {
                    identity,
                    via: JoinedVia::Phone,
                    store_id: None,
                    birthday_month: None,
                    display_name: None,
                },
                now,
            )
            .await?;
            verified = Some(phone);
            m.customer_id
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "phone: required (or a customer token)",
            ));
        }
    };
    let coupon = cards::claim(&app.db, tenant, c.id, customer, now).await?;
    let order = match b
        .order_no
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(no) => Some(
            link_parcel_order(
                &app,
                tenant,
                c.batch_id,
                no,
                customer,
                verified.as_ref(),
                now,
            )
            .await,
        ),
        None => None,
    };
    let (qr,): (Option<String>,) = app
        .db
        .fetch_one(&sql("SELECT contact_qr_url FROM card_batches WHERE id = $1").bind(c.batch_id))
        .await?;
    // The claimant is now signed in: the mini-program reads the token, a browser keeps the cookie.
    let expires_at = now + customer_sessions::CARD_CLAIM_MS;
    let token = app
        .customer_sessions
        .issue(tenant, customer, expires_at, now);
    let mut answer = Json(
        json!({"coupon": coupon, "contact_qr_url": qr, "customer_token": token,
        "order": order}),
    )
    .into_response();
    if let Some(v) = session::session_cookie(&app, &token, expires_at) {
        answer.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(answer)
}

/// The order a claim named, linked to the claimant when it is theirs: an unlinked buyer's order
/// of the card's channel whose masked phone is the claimant's verified one. The coupon is
/// already theirs, so the answer only says how it went, in the customer's words; it names no
/// other customer and no reason a stranger could use to probe orders.
async fn link_parcel_order(
    app: &AppState,
    tenant: TenantId,
    batch_id: i64,
    order_no: &str,
    customer: CustomerId,
    verified: Option<&Phone>,
    now: i64,
) -> serde_json::Value {
    let not = |said: &str| json!({"linked": false, "said": said});
    let Some(phone) = verified else {
        return not("用手机号验证后领取，才能关联订单 / Claim with your phone to link an order");
    };
    if order_no.chars().count() > 64 {
        return not("订单号有误 / That order number cannot be read");
    }
    let channel = match cards::get_batch(&app.db, tenant, batch_id).await {
        Ok(b) => b.channel,
        Err(e) => {
            tracing::error!(error = %e, "a claimed card's batch could not be read");
            return not("暂时无法关联订单，请联系客服 / The order could not be linked just now");
        }
    };
    match buyer_link::link_order_by_phone(&app.db, tenant, &channel, order_no, customer, phone, now)
        .await
    {
        Ok(unlinked) => {
            let keys = [(channel, order_no.to_owned())];
            let stored = siyu::workflows::OrdersStored {
                tenant,
                orders: &keys,
                buyers: &[unlinked, customer],
                now,
            };
            if let Err(e) = siyu::workflows::orders_stored(&app.db, &app.audiences, stored).await {
                tracing::error!(error = %e, "points, tiers or the index did not follow a linked parcel order");
            }
            json!({"linked": true, "said": "订单已关联 / Your order is linked"})
        }
        Err(LinkError::AlreadyLinked {
            customer: owner, ..
        }) if owner == customer => {
            json!({"linked": true, "said": "订单已关联 / Your order is linked"})
        }
        // Already someone else's, or not theirs: the same words, so that
        // an order number cannot be tested for whose it is.
        Err(
            LinkError::AlreadyLinked { .. }
            | LinkError::PhoneDiffers { .. }
            | LinkError::NoOrder { .. },
        ) => not(
            "未找到用这个手机号下的该订单 / No order with this number was placed with this phone",
        ),
        Err(e) => {
            tracing::error!(error = %e, "a parcel order could not be linked");
            not("暂时无法关联订单，请联系客服 / The order could not be linked just now")
        }
    }
}
