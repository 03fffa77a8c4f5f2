//! The OpenAPI 3.1 document of `/api/v1` (`GET /api/v1/openapi.json`, no key needed) and its
//! reference page (`GET /api/docs`), built once from the table below. The table is held to the
//! route table by a test that reads `routes.rs`: a route under `/api/v1` without an entry, or an
//! entry for a route or method that is not served, fails it.
//!
//! Each line: `METHOD path | tag | summary | body`, where the body is `-` (none), `json`
//! (an object the handler reads; its fields are in the guides under `docs/`), `csv` (an export
//! file as the body), or fields `name:type` with `!` for required (`string`, `integer`,
//! `boolean`, `array`, `object`).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

const OPS: &str = r#"
GET /api/v1/access/keys | access | API keys of the brand (their first characters) | -
POST /api/v1/access/keys | access | Make an API key (shown once) | name:string! role:string
DELETE /api/v1/access/keys/{prefix} | access | Revoke a key | -
POST /api/v1/access/keys/{prefix}/rotate | access | Replace a key with a new one of the same name and role | -
GET /api/v1/access/audit | access | The audit log | -
POST /api/v1/customer-tokens | access | A customer's token for the H5 pages | customer_id:integer! ttl_seconds:integer
DELETE /api/v1/customers/{id}/sessions | access | Revoke a customer's H5 sessions | -
POST /api/v1/events | know | Events, up to 1,000 a batch | events:array!
POST /api/v1/orders | know | Orders, up to 1,000 a batch (fen, UTC milliseconds) | orders:array!
POST /api/v1/orders/link | know | Link an order number to a customer's phone | channel:string! order_no:string! phone:string!
POST /api/v1/import/orders | know | Upload a marketplace order export | csv
GET /api/v1/import/runs | know | Imports run | -
GET /api/v1/import/runs/{id} | know | One import | -
GET /api/v1/import/runs/{id}/rejected.csv | know | An import's rejected rows | -
GET /api/v1/import/statuses | know | Order statuses as each platform writes them | -
PUT /api/v1/import/status-map | know | The brand's own status words | json
GET /api/v1/shops | know | Connected marketplace shops | -
POST /api/v1/shops | know | Connect a shop | json
DELETE /api/v1/shops/{id} | know | Disconnect a shop | -
POST /api/v1/shops/{id}/backfill | know | Read a shop's past orders | json
POST /api/v1/shops/{id}/sync | know | Read a shop's new orders now | -
GET /api/v1/customers | know | Customers: search, filters, pages | -
GET /api/v1/customers/{id} | know | A customer: identities, orders, events | -
PUT /api/v1/customers/{id}/attributes | know | A customer's attributes | json
GET /api/v1/customers/{id}/tags | know | A customer's tags | -
GET /api/v1/customers/{id}/notes | know | Staff notes on a customer | -
POST /api/v1/customers/{id}/notes | know | Write a note | body:string!
GET /api/v1/customers/{id}/coupons | convert | A customer's coupons | -
GET /api/v1/tags | know | Tags | -
POST /api/v1/tags | know | Make a tag | name:string! group_name:string rule:object
DELETE /api/v1/tags/{id} | know | Delete a tag | -
POST /api/v1/tags/{id}/customers | know | Tag customers | customer_ids:array phones:array
DELETE /api/v1/tags/{id}/customers | know | Untag customers | customer_ids:array phones:array
GET /api/v1/rfm | know | RFM classes and their sizes | -
PUT /api/v1/rfm/settings | know | RFM thresholds | json
POST /api/v1/audience/count | know | Count a rule's people | rule:object!
POST /api/v1/audience/preview | know | A sample of a rule's people | rule:object!
GET /api/v1/segments | know | Segments with their live counts | -
POST /api/v1/segments | know | Make a segment | name:string! rule:object!
GET /api/v1/segments/{id} | know | A segment | -
PUT /api/v1/segments/{id} | know | Change a segment | name:string rule:object
DELETE /api/v1/segments/{id} | know | Delete a segment | -
GET /api/v1/segments/{id}/preview | know | A sample of a segment's people | -
GET /api/v1/segments/{id}/export | know | A segment's people as CSV | -
GET /api/v1/segments/{id}/snapshots | know | A segment's snapshots | -
POST /api/v1/segments/{id}/snapshots | know | Freeze a segment's people | -
GET /api/v1/segments/{id}/snapshots/{snapshot} | know | A snapshot's people | -
GET /api/v1/contact-policy | engage | The contact policy (caps, quiet hours, time zone) | -
PUT /api/v1/contact-policy | engage | Change the contact policy | json
POST /api/v1/unsubscribes | engage | Record an opt-out | phone:string! channel:string
POST /api/v1/messages | engage | Send a message through the outbox | json
GET /api/v1/outbox | engage | Messages by state | -
POST /api/v1/outbox/dispatch | engage | Send what is due now | -
POST /api/v1/links | acquire | A tracking link | target:string! channel:string
GET /api/v1/links/{id} | acquire | A tracking link and its clicks | -
GET /api/v1/campaigns | acquire | SMS campaigns | -
POST /api/v1/campaigns | acquire | Make an SMS campaign from a snapshot | name:string! snapshot_id:integer! variants:array! target_url:string holdout_percent:integer
GET /api/v1/campaigns/{id} | acquire | A campaign | -
POST /api/v1/campaigns/{id}/launch | acquire | Launch a campaign | -
GET /api/v1/campaigns/{id}/report | measure | A campaign's report (A/B, GMV, ROI) | -
GET /api/v1/campaigns/{id}/report.csv | measure | A campaign's report as CSV | -
GET /api/v1/reports/trends | measure | GMV, orders, buyers, new customers, WeCom adds per day of a range | -
GET /api/v1/card-batches | acquire | Package-card batches | -
POST /api/v1/card-batches | acquire | Make a batch of cards | name:string! channel:string! coupon_template_id:integer! size:integer!
GET /api/v1/card-batches/{id} | acquire | A batch's report | -
GET /api/v1/card-batches/{id}/cards.csv | acquire | A batch's cards as CSV | -
GET /api/v1/card-batches/{id}/report.csv | acquire | A batch's report as CSV | -
GET /api/v1/card-batches/{id}/cards.pdf | acquire | A batch's cards to print | -
POST /api/v1/cards/{code}/contact | acquire | Record a card claimant's WeCom contact | json
GET /api/v1/wecom | connect | The WeCom settings (no secrets) | -
PUT /api/v1/wecom | connect | Set WeCom up | corp_id:string! secret:string! token:string! encoding_aes_key:string!
POST /api/v1/wecom/unsubscribes | connect | Record a WeCom opt-out | json
POST /api/v1/connect/tick | connect | Run WeCom's periodic work now | -
GET /api/v1/live-codes | connect | Live codes with their figures | -
POST /api/v1/live-codes | connect | Make a live code | name:string! guides:array! backup_userid:string! welcome:object! source:string source_id:integer tag_ids:array
GET /api/v1/live-codes/{id} | connect | A live code | -
PUT /api/v1/live-codes/{id} | connect | Change a live code (what it was made for stays) | name:string! guides:array! backup_userid:string! welcome:object! tag_ids:array
POST /api/v1/live-codes/{id}/stop | connect | Stop a live code | -
GET /api/v1/live-codes/{id}/qr.png | connect | A live code's QR to print (PNG) | -
GET /api/v1/live-codes/{id}/qr.svg | connect | A live code's QR to print (SVG) | -
GET /api/v1/groups | connect | Customer groups | -
POST /api/v1/groups/sync | connect | Read every group from WeCom | -
GET /api/v1/groups/retention | connect | Group retention by join week | -
PUT /api/v1/groups/{chat_id}/kind | connect | A group's kind | kind:string!
GET /api/v1/sop-posts | connect | The SOP calendar | -
POST /api/v1/sop-posts | connect | Schedule an SOP post | json
GET /api/v1/mass-messages | connect | Mass messages | -
POST /api/v1/mass-messages | connect | Schedule a mass message | json
GET /api/v1/mass-messages/{id} | connect | A mass message and its completion | -
GET /api/v1/flash-sales | convert | Flash sales | -
POST /api/v1/flash-sales | convert | Make a flash sale | name:string! sku:string! title:string! price:integer! stock:integer! starts_at:integer! ends_at:integer!
GET /api/v1/flash-sales/{id} | convert | A flash sale | -
POST /api/v1/flash-sales/{id}/attempts | convert | Reserve a unit for a customer | customer_id:integer!
GET /api/v1/flash-sales/{id}/orders | convert | A flash sale's reservations | -
POST /api/v1/flash-orders/{id}/pay | convert | Pay a reservation | -
POST /api/v1/flash-orders/{id}/cancel | convert | Cancel a reservation | -
POST /api/v1/members | convert | Enrol a member | json
GET /api/v1/members/{id} | convert | A member | -
GET /api/v1/members/{id}/points | convert | A member's points ledger | -
POST /api/v1/members/{id}/points | convert | Give or take points | points:integer! reason:string!
PUT /api/v1/points/settings | convert | Points settings | json
POST /api/v1/points/expire | convert | Expire points due | -
POST /api/v1/tiers/review | convert | Review every member's tier | -
GET /api/v1/coupon-templates | convert | Coupon templates | -
POST /api/v1/coupon-templates | convert | Make a coupon template | name:string! kind:string! value:integer valid_days:integer total:integer claim_via:string
PUT /api/v1/coupon-templates/{id}/claim-via | convert | How a template's coupons are claimed | claim_via:string!
POST /api/v1/coupon-templates/{id}/stop | convert | Stop issuing a template | -
POST /api/v1/coupon-templates/{id}/total | convert | Add to a template's total | add:integer!
POST /api/v1/coupon-templates/{id}/claim | convert | Claim a coupon for a customer | customer_id:integer!
POST /api/v1/coupon-templates/{id}/issue | convert | Issue coupons to a snapshot or a list | json
POST /api/v1/coupons/redeem | convert | Redeem a coupon in store | code:string! order_no:string amount:integer
POST /api/v1/coupons/refund | convert | Give a redeemed coupon back | code:string!
GET /api/v1/group-buys | convert | Group buys | -
POST /api/v1/group-buys | convert | Make a group buy | json
GET /api/v1/group-buys/{id} | convert | A group buy | -
POST /api/v1/group-buys/{id}/teams | convert | Open a team | customer_id:integer!
POST /api/v1/group-buys/sweep | convert | Close teams past their time | -
GET /api/v1/teams/{id} | convert | A team | -
POST /api/v1/teams/{id}/join | convert | Join a team | customer_id:integer!
GET /api/v1/bargain-items | convert | Bargain items | -
POST /api/v1/bargain-items | convert | Make a bargain item | json
POST /api/v1/bargain-items/{id}/bargains | convert | Start a bargain | customer_id:integer!
GET /api/v1/bargains/{id} | convert | A bargain | -
POST /api/v1/bargains/{id}/assists | convert | A friend's assist | json
POST /api/v1/bargains/{id}/buy | convert | Buy at the bargained price | -
GET /api/v1/gifts | convert | Gifts for points | -
POST /api/v1/gifts | convert | Make a gift | json
POST /api/v1/gifts/{id}/redeem | convert | Redeem a gift for points | customer_id:integer!
"#;

/// One operation of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub body: &'static str,
}

/// The table's operations, in its order.
pub(crate) fn ops() -> Vec<Op> {
    OPS.lines()
        .filter_map(|line| {
            let mut cols = line.split(" | ");
            let (method, path) = cols.next()?.split_once(' ')?;
            Some(Op {
                method,
                path,
                tag: cols.next()?,
                summary: cols.next()?,
                body: cols.next()?.trim(),
            })
        })
        .collect()
}

/// The error every refusal answers with.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
        }}
    })
}

fn body_schema(spec: &str) -> Option<(&'static str, Value)> {
    match spec {
        "-" => None,
        "csv" => Some(("text/csv", json!({"type": "string"}))),
        "json" => Some(("application/json", json!({"type": "object"}))),
        fields => {
            let mut props = Map::new();
            let mut required = Vec::new();
            for f in fields.split_whitespace() {
                let (name, ty) = f.split_once(':').unwrap_or((f, "string"));
                let (ty, req) = match ty.strip_suffix('!') {
                    Some(t) => (t, true),
                    None => (ty, false),
                };
                if req {
                    required.push(json!(name));
                }
                props.insert(name.to_owned(), json!({"type": ty}));
            }
            Some((
                "application/json",
                json!({"type": "object", "properties": props, "required": required}),
            ))
        }
    }
}

/// The document, built on first use.
pub(crate) fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = Map::new();
        for op in ops() {
            let mut o = json!({
                "tags": [op.tag],
                "summary": op.summary,
                "operationId": format!("{}_{}", op.method.to_lowercase(), op.path.trim_start_matches("/api/v1/").replace(['/', '-', '.'], "_").replace(['{', '}'], "")),
                "responses": {
                    "200": {"description": "Done"},
                    "400": {"description": "Refused: the field and the reason", "content": {"application/json": {"schema": error_schema()}}},
                    "401": {"description": "No key, or a key not known"},
                    "403": {"description": "The key's role may not do this"},
                    "404": {"description": "Not this brand's, or not there"},
                    "429": {"description": "Too many requests: wait as Retry-After says"}
                }
            });
            let params: Vec<Value> = op
                .path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| {
                    // Ids are whole numbers from 1 (a fuzzer then reaches rows that exist);
                    // key prefixes, card codes and group chat ids are text.
                    let schema = match name {
                        "id" | "snapshot" => json!({"type": "integer", "minimum": 1}),
                        _ => json!({"type": "string", "minLength": 1}),
                    };
                    json!({"name": name, "in": "path", "required": true, "schema": schema})
                })
                .collect();
            if !params.is_empty() {
                o["parameters"] = json!(params);
            }
            if let Some((mime, schema)) = body_schema(op.body) {
                o["requestBody"] = json!({"required": true, "content": {mime: {"schema": schema}}});
            }
            let entry = paths
                .entry(op.path.to_owned())
                .or_insert_with(|| json!({}));
            entry[op.method.to_lowercase()] = o;
        }
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Siyu API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The brand's own systems talk to Siyu here: customers and orders in, segments, messages, campaigns, WeCom, coupons and activities out. Money is in fen, times in UTC milliseconds, every call is scoped to the key's brand."
            },
            "servers": [{"url": "/"}],
            "security": [{"key": []}],
            "components": {"securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "An API key (siyu key create, or 账号 in the console)"}}},
            "paths": paths
        })
    })
}

/// `GET /api/v1/openapi.json`
pub(crate) async fn openapi_json() -> axum::Json<&'static Value> {
    axum::Json(document())
}

/// `GET /api/docs`: the operations by capability, each with its method, path, summary and body
/// fields, drawn from the same document.
pub(crate) async fn reference_page() -> axum::response::Html<String> {
    static PAGE: OnceLock<String> = OnceLock::new();
    let html = PAGE.get_or_init(|| {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut out = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Siyu API</title>\
             <style>body{font:14px/1.6 -apple-system,\"PingFang SC\",sans-serif;max-width:960px;margin:0 auto;padding:24px;color:#1f2329}\
             code{background:#f5f6f7;padding:1px 4px;border-radius:3px}.m{display:inline-block;min-width:56px;font-weight:600}\
             .GET{color:#1a7f37}.POST{color:#0969da}.PUT{color:#9a6700}.DELETE{color:#cf222e}li{margin:4px 0}.f{color:#646a73}</style></head><body>\
             <h1>Siyu API</h1><p>Every call takes <code>Authorization: Bearer &lt;key&gt;</code>. Money is in fen (1 yuan = 100), times in UTC milliseconds. \
             A refusal answers <code>{\"error\": {\"code\", \"message\"}}</code> naming the field. The machine-readable document: \
             <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>",
        );
        let ops = ops();
        let mut tags: Vec<&str> = ops.iter().map(|o| o.tag).collect();
        tags.dedup();
        let mut seen = std::collections::HashSet::new();
        for tag in tags.into_iter().filter(|t| seen.insert(*t)) {
            out.push_str(&format!("<h2 id=\"{tag}\">{tag}</h2><ul>"));
            for o in ops.iter().filter(|o| o.tag == tag) {
                let fields = match o.body {
                    "-" => String::new(),
                    "csv" => " <span class=\"f\">body: the export file</span>".into(),
                    "json" => " <span class=\"f\">body: JSON (see the guide)</span>".into(),
                    f => format!(" <span class=\"f\">body: {}</span>", esc(f)),
                };
                out.push_str(&format!(
                    "<li><span class=\"m {m}\">{m}</span> <code>{p}</code> {s}{fields}</li>",
                    m = o.method,
                    p = esc(o.path),
                    s = esc(o.summary)
                ));
            }
            out.push_str("</ul>");
        }
        out.push_str("</body></html>");
        out
    });
    axum::response::Html(html.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, path)` of every `/api/v1` route in `routes.rs`, read from its text.
    fn served() -> BTreeSet<(String, String)> {
        let text = include_str!("../routes.rs");
        let mut out = BTreeSet::new();
        for part in text.split(".route(").skip(1) {
            let part = part.trim_start();
            let Some(rest) = part.strip_prefix('"') else {
                continue;
            };
            let Some((path, rest)) = rest.split_once('"') else {
                continue;
            };
            if !path.starts_with("/api/v1") {
                continue;
            }
            // The route's own call ends at the next builder call.
            let own = rest.split("\n        .").next().unwrap_or(rest);
            for m in ["get", "post", "put", "delete", "patch"] {
                let mut from = 0;
                while let Some(i) = own[from..].find(&format!("{m}(")) {
                    let at = from + i;
                    let before = own[..at].chars().last().unwrap_or(' ');
                    if !(before.is_alphanumeric() || before == '_') {
                        out.insert((m.to_uppercase(), path.to_owned()));
                    }
                    from = at + m.len();
                }
            }
        }
        out
    }

    #[test]
    fn the_document_holds_every_api_route_and_no_other() {
        let served = served();
        assert!(served.len() > 100, "read {} routes", served.len());
        let documented: BTreeSet<(String, String)> = ops()
            .into_iter()
            .filter(|o| o.path != "/api/v1/openapi.json")
            .map(|o| (o.method.to_owned(), o.path.to_owned()))
            .collect();
        let undocumented: Vec<_> = served
            .difference(&documented)
            .filter(|(_, p)| p != "/api/v1/openapi.json")
            .collect();
        let gone: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "routes without an entry: {undocumented:#?}"
        );
        assert!(gone.is_empty(), "entries for routes not served: {gone:#?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_bodies_and_path_parameters() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let live = &d["paths"]["/api/v1/live-codes/{id}"];
        assert_eq!(live["put"]["parameters"][0]["name"], "id");
        let body = &live["put"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            body["required"]
                .as_array()
                .expect("required")
                .contains(&json!("guides"))
        );
        assert_eq!(body["properties"]["tag_ids"]["type"], "array");
        // Operation ids are unique, as generators need.
        let mut ids = BTreeSet::new();
        for (_, item) in d["paths"].as_object().expect("paths") {
            for (_, op) in item.as_object().expect("ops") {
                assert!(ids.insert(op["operationId"].as_str().expect("id").to_owned()));
            }
        }
    }
}
