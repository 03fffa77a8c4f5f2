//! Console page for acquire: SMS recall campaigns and package-card batches, each with its
//! figures, the GMV series after send as a small bar chart, the A/B verdict and its exports;
//! forms to create a campaign from a segment snapshot (and a button to launch a draft) and a
//! card batch with its hook coupon.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use siyu::platform::Fen;

use super::form::{list, number, opt_fen, opt_time, required_number};
use crate::AppState;
use crate::api::ApiError;
use crate::api::acquire::cards::{PrintFile, print_file};
use crate::api::acquire::links::link_len;
use crate::console::{ConsoleUser, page};
use crate::i18n::{AcqTr, Lang, Tr, refusals};
use siyu::acquire::campaigns::{
    self, CampaignError, CampaignStatus, NewCampaign, VariantSpec, approval,
};
use siyu::acquire::cards::{self, CardVariant, NewBatch};
use siyu::acquire::report;
use siyu::convert::coupons;
use siyu::engage::outbox::progress;
use siyu::know::report::yuan;
use siyu::know::segments;
use siyu::platform::clock::{format_local, now_ms};

pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub h: i64,
    pub label: String,
}

pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub status: &'static str,
    /// Where a launched campaign's messages stand, in words (empty for a draft).
    pub progress: String,
    /// Not launched yet: the row offers the launch button.
    pub draft: bool,
    /// The launch button's words: launch, or resume one that stopped partway.
    pub button: &'static str,
    /// What the launch button asks before it sends, with the audience's size.
    pub confirm: String,
    /// Waiting for approval: who asked, and whether this user may approve it.
    pub awaiting: Option<String>,
    pub may_approve: bool,
    pub sent: i64,
    pub clicks: i64,
    pub buyers: i64,
    pub gmv: String,
    pub cost: String,
    pub roi: String,
    pub bars: Vec<Bar>,
    pub verdict: String,
}

pub struct BatchRow {
    pub id: i64,
    pub name: String,
    pub channel: String,
    pub shipped: i64,
    pub scanned: i64,
    pub claimed: i64,
    pub recall_rate: String,
    pub gmv: String,
    pub per_card: String,
    pub roi: String,
}

#[derive(Template)]
#[template(path = "console/acquire.html")]
pub(crate) struct AcquirePage {
    tr: &'static Tr,
    aq: &'static AcqTr,
    lang: &'static str,
    user: String,
    active: &'static str,
    campaigns: Vec<CampaignRow>,
    batches: Vec<BatchRow>,
    /// Whether the user may create and launch: a viewer is shown no forms or buttons.
    may_write: bool,
    snapshots: Vec<super::segments::SnapshotOption>,
    /// The coupon templates a card batch may offer: (id, name).
    offers: Vec<(i64, String)>,
    /// The marketplaces a batch ships with: (code, name).
    channels: Vec<(&'static str, String)>,
    errors: Vec<String>,
    notices: Vec<String>,
    typed: Typed,
}

/// What was typed into the two forms: the one refused comes back as it was sent (three
/// hand-written SMS texts are not lost to a missing opt-out line).
#[derive(Default)]
pub(crate) struct Typed {
    pub campaign: CampaignForm,
    pub batch: BatchForm,
}

pub(crate) fn roi(r: Option<f64>) -> String {
    r.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into())
}

/// Bars of cumulative GMV at 3, 6, 12, 24 hours, scaled to the tallest.
pub(crate) fn bars(points: &[report::Point]) -> Vec<Bar> {
    let top = points.iter().map(|p| p.gmv.get()).max().unwrap_or(0).max(1);
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = (p.gmv.get() * 40 / top).max(1);
            Bar {
                x: i as i64 * 33,
                y: 44 - h,
                h,
                label: format!("{}h: {}", p.hours, yuan(p.gmv)),
            }
        })
        .collect()
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    /// A campaign just launched from the page, whose outcome counts it shows. Text, so that a
    /// hand-edited address still opens the page.
    launched: Option<String>,
    /// A campaign whose launch now waits for approval.
    asked: Option<String>,
}

pub(crate) async fn acquire_page(
    State(app): State<AppState>,
    u: ConsoleUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let tenant = u.caller.tenant_id;
    let mut notices = Vec::new();
    // Only a launched campaign of this tenant has counts to show; anything else shows none.
    if let Some(id) = q.launched.and_then(|l| l.parse::<i64>().ok()) {
        let launched = match campaigns::get(&app.db, tenant, id).await {
            Ok(c) => c.status == CampaignStatus::Launched,
            Err(CampaignError::NotFound(_)) => false,
            Err(e) => return ApiError::from(e).into_response(),
        };
        if launched {
            match campaigns::launch_report(&app.db, tenant, id).await {
                Ok(r) => notices.push(launch_notice(u.lang.aq(), &r)),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    }
    if let Some(id) = q.asked.and_then(|l| l.parse::<i64>().ok()) {
        let waiting = match approval::of(&app.db, tenant, id).await {
            Ok(a) => a.asked_by.is_some() && a.approved_by.is_none(),
            Err(CampaignError::NotFound(_)) => false,
            Err(e) => return ApiError::from(e).into_response(),
        };
        if waiting {
            notices.push(u.lang.aq().asked_notice.to_owned());
        }
    }
    render(&app, &u, Vec::new(), notices, Typed::default()).await
}

/// What became of a launch's customers, in the page's words.
pub(crate) fn launch_notice(aq: &AcqTr, r: &campaigns::LaunchReport) -> String {
    format!(
        "{}: {} {} · {} {} · {} {} · {} {} · {} {} · {} {}",
        aq.launch_done,
        aq.queued,
        r.queued,
        aq.control,
        r.control,
        aq.no_phone,
        r.no_phone,
        aq.duplicate,
        r.duplicate,
        aq.excluded,
        r.excluded,
        aq.unsubscribed,
        r.unsubscribed
    )
}

/// Where a launched campaign's messages stand, each state that holds any with its count; held
/// messages wait for the send time set (when it is still to come) or else for quiet hours.
pub(crate) fn progress_words(aq: &AcqTr, p: &progress::Progress, scheduled_at: i64) -> String {
    let n = |t: &str, k: i64| t.replace("{n}", &k.to_string());
    let mut out = Vec::new();
    if p.queued > 0 {
        out.push(n(aq.p_queued, p.queued));
    }
    if p.held > 0 {
        let until = p.held_until.unwrap_or(scheduled_at);
        let words = if scheduled_at > now_ms() && until <= scheduled_at {
            aq.p_scheduled
        } else {
            aq.p_quiet
        };
        out.push(n(words, p.held).replace("{t}", &format_local(until)));
    }
    if p.retrying > 0 {
        out.push(n(aq.p_retrying, p.retrying));
    }
    if p.sending > 0 {
        out.push(n(aq.p_sending, p.sending));
    }
    out.push(n(aq.p_sent, p.sent));
    if p.failed > 0 {
        out.push(n(aq.p_failed, p.failed));
    }
    if p.suppressed > 0 {
        out.push(n(aq.p_suppressed, p.suppressed));
    }
    out.join(" · ")
}

/// The page, with what the last form did: refusals naming their field, or a launch's counts.
pub(crate) async fn render(
    app: &AppState,
    u: &ConsoleUser,
    errors: Vec<String>,
    notices: Vec<String>,
    typed: Typed,
) -> Response {
    let tenant = u.caller.tenant_id;
    let aq = u.lang.aq();
    let run = async {
        let mut cs = Vec::new();
        for c in campaigns::list(&app.db, tenant).await?.into_iter().take(20) {
            let r = report::campaign_report(&app.db, tenant, c.id).await?;
            let verdict =
                r.ab.as_ref()
                    .map(|a| {
                        if u.lang == Lang::Zh {
                            a.verdict_zh.clone()
                        } else {
                            a.verdict_en.clone()
                        }
                    })
                    .unwrap_or_default();
            let draft = c.status != CampaignStatus::Launched;
            // A draft with recipients recorded is a launch that stopped partway (a crash, a
            // restart): launching again sends only to those it missed.
            let awaiting = match (&c.approval.asked_by, &c.approval.approved_by) {
                (Some(who), None) if draft => Some(who.clone()),
                _ => None,
            };
            let may_approve = awaiting.as_deref().is_some_and(|who| {
                u.caller.role == siyu::platform::access::Role::Admin && who != person(u)
            });
            let (status, button, confirm) = if draft {
                let size = segments::snapshot_size(&app.db, tenant, c.snapshot_id).await?;
                let confirm = format!("{}{}", aq.confirm_launch, size.unwrap_or(0));
                if campaigns::launch_report(&app.db, tenant, c.id)
                    .await?
                    .audience
                    > 0
                {
                    (aq.interrupted, aq.resume, confirm)
                } else {
                    (aq.draft, aq.launch, confirm)
                }
            } else {
                (aq.launched, aq.launch, String::new())
            };
            let progress = if draft {
                None
            } else {
                Some(progress::campaign_progress(&app.db, tenant, c.id, now_ms()).await?)
            };
            let status = match &progress {
                Some(p) if p.finished() => aq.all_sent,
                Some(_) => aq.sending_now,
                None => status,
            };
            let progress = progress
                .map(|p| progress_words(aq, &p, c.scheduled_at))
                .unwrap_or_default();
            let status = if awaiting.is_some() {
                aq.awaiting
            } else {
                status
            };
            cs.push(CampaignRow {
                id: c.id,
                name: c.name,
                status,
                progress,
                button,
                draft,
                confirm,
                awaiting,
                may_approve,
                sent: r.total.sent,
                clicks: r.total.clicks,
                buyers: r.total.buyers,
                gmv: yuan(r.total.gmv),
                cost: yuan(r.total.cost),
                roi: roi(r.total.roi),
                bars: bars(&r.total.series),
                verdict,
            });
        }
        let mut bs = Vec::new();
        for b in cards::list_batches(&app.db, tenant)
            .await?
            .into_iter()
            .take(20)
        {
            let r = cards::batch_report(&app.db, tenant, b.id).await?;
            bs.push(BatchRow {
                id: b.id,
                name: b.name,
                channel: crate::i18n::channel_name(u.lang, &b.channel),
                shipped: r.total.shipped,
                scanned: r.total.scanned,
                claimed: r.total.claimed,
                recall_rate: format!("{:.1}%", r.total.recall_rate * 100.0),
                gmv: yuan(r.total.gmv),
                per_card: format!("{:.2}", r.total.per_card / 100.0),
                roi: roi(r.total.roi),
            });
        }
        let snapshots = segments::recent_snapshots(&app.db, tenant, 50).await?;
        // A batch may only use a template set up for cards.
        let offers = coupons::templates(&app.db, tenant)
            .await?
            .into_iter()
            .filter(|t| t.claim_via == coupons::ClaimVia::Card.as_str())
            .map(|t| (t.id, t.name))
            .collect();
        Ok::<_, ApiError>((cs, bs, snapshots, offers))
    };
    match run.await {
        Ok((campaigns, batches, snapshots, offers)) => page(AcquirePage {
            tr: u.lang.tr(),
            aq,
            lang: u.lang.code(),
            user: u.caller.name.clone(),
            active: "acquire",
            campaigns,
            batches,
            may_write: u.caller.role.may_write(),
            snapshots: snapshots
                .into_iter()
                .map(super::segments::SnapshotOption::of)
                .collect(),
            offers,
            channels: crate::i18n::CHANNELS
                .iter()
                .filter(|c| !matches!(**c, "store" | "mall"))
                .map(|c| (*c, crate::i18n::channel_name(u.lang, c)))
                .collect(),
            errors,
            notices,
            typed,
        }),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn may_write(u: &ConsoleUser) -> Result<(), ApiError> {
    if u.caller.role.may_write() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            u.lang.aq().read_only,
        ))
    }
}

/// A form the decoder could not read (a field given twice, bad encoding), as a refusal.
pub(crate) fn unreadable(e: FormRejection) -> ApiError {
    ApiError::bad_request(format!("form: {}", e.body_text()))
}

/// The page with a refusal on it, answered with the refusal's status.
pub(crate) async fn refused(app: &AppState, u: &ConsoleUser, e: ApiError) -> Response {
    refused_with(app, u, e.message().to_owned(), e.status(), Typed::default()).await
}

/// The page with a refusal in the page's words beside what was typed.
async fn refused_with(
    app: &AppState,
    u: &ConsoleUser,
    said: String,
    status: StatusCode,
    typed: Typed,
) -> Response {
    let mut r = render(app, u, vec![said], Vec::new(), typed).await;
    // A page that could not be drawn keeps its own error status.
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}

/// The campaign form as posted: every field as text, and each may be missing, so that a bad
/// one is refused by name on the page rather than by the form decoder.
#[derive(Deserialize, Clone, Default)]
#[serde(default)]
pub(crate) struct CampaignForm {
    pub name: String,
    pub snapshot_id: String,
    pub variant_a: String,
    pub variant_b: String,
    pub variant_c: String,
    pub holdout_percent: String,
    pub target_url: String,
    pub scheduled_at: String,
    pub forbidden_words: String,
    pub exclude_phones: String,
    pub cost_per_part: String,
    pub window_days: String,
}

impl CampaignForm {
    /// The campaign the form describes: variants A, B, C from the texts filled in (equal
    /// weights), money in yuan, the schedule in China time (empty: now), lists as [`list`]
    /// splits them.
    fn campaign(&self, lang: Lang) -> Result<NewCampaign, String> {
        let snapshot_id = required_number(lang, "snapshot_id", &self.snapshot_id)?;
        let variants = [
            ("A", &self.variant_a),
            ("B", &self.variant_b),
            ("C", &self.variant_c),
        ]
        .into_iter()
        .filter(|(_, content)| !content.trim().is_empty())
        .map(|(name, content)| VariantSpec {
            name: name.into(),
            content: content.clone(),
            weight: 1,
        })
        .collect();
        let cost_per_part = opt_fen(lang, "cost_per_part", &self.cost_per_part)?;
        let scheduled_at = opt_time(lang, "scheduled_at", &self.scheduled_at)?;
        let target_url = Some(self.target_url.trim().to_string()).filter(|t| !t.is_empty());
        Ok(NewCampaign {
            name: self.name.clone(),
            snapshot_id,
            variants,
            holdout_percent: number(lang, "holdout_percent", &self.holdout_percent)?.unwrap_or(0),
            seed: None,
            target_url,
            template_code: None,
            exclude_phones: list(&self.exclude_phones),
            forbidden_words: list(&self.forbidden_words),
            cost_per_part,
            window_days: number(lang, "window_days", &self.window_days)?,
            scheduled_at,
        })
    }
}

/// A campaign refused by the domain, in the page's words: a variant's text is named by the
/// box it was typed in (文案版本 A/B/C), not by its place among those filled in.
fn campaign_said(u: &ConsoleUser, c: &NewCampaign, e: &CampaignError) -> String {
    let CampaignError::Invalid { field, reason } = e else {
        if let (CampaignError::Segment(_), Lang::Zh) = (e, u.lang) {
            return "人群快照：找不到这个快照（或它不属于本品牌），请重新选择".to_owned();
        }
        return refusals::said(u.lang, &e.to_string());
    };
    let variant = field
        .strip_prefix("variants[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok())
        .and_then(|i| c.variants.get(i));
    match (variant, u.lang) {
        (Some(v), Lang::Zh) => {
            let aq = u.lang.aq();
            let label = match v.name.as_str() {
                "A" => aq.variant_a,
                "B" => aq.variant_b,
                _ => aq.variant_c,
            };
            format!("{label}：{}", refusals::reason(u.lang, reason))
        }
        _ => refusals::invalid(u.lang, field, reason),
    }
}

/// `POST /console/acquire/campaigns`: a draft campaign, refused by field on the page with
/// what was typed kept.
pub(crate) async fn create_campaign(
    State(app): State<AppState>,
    u: ConsoleUser,
    f: Result<Form<CampaignForm>, FormRejection>,
) -> Response {
    let f = match f {
        Ok(Form(f)) => f,
        Err(e) => return refused(&app, &u, unreadable(e)).await,
    };
    if let Err(e) = may_write(&u) {
        return refused(&app, &u, e).await;
    }
    let (said, status) = match f.campaign(u.lang) {
        Err(said) => (said, StatusCode::BAD_REQUEST),
        Ok(c) => {
            match campaigns::create(&app.db, u.caller.tenant_id, &c, link_len(&app), now_ms()).await
            {
                Ok(_) => return Redirect::to("/console/acquire").into_response(),
                Err(CampaignError::Db(e)) => {
                    return ApiError::from(CampaignError::Db(e)).into_response();
                }
                Err(e) => (campaign_said(&u, &c, &e), ApiError::from(e).status()),
            }
        }
    };
    let typed = Typed {
        campaign: f,
        ..Typed::default()
    };
    refused_with(&app, &u, said, status, typed).await
}

/// The card-batch form as posted, every field as text.
#[derive(Deserialize, Clone)]
#[serde(default)]
pub(crate) struct BatchForm {
    pub name: String,
    pub channel: String,
    pub coupon_template_id: String,
    pub size: String,
    pub variants: String,
    pub contact_qr_url: String,
    pub cost_per_card: String,
    pub window_days: String,
}

impl Default for BatchForm {
    fn default() -> Self {
        BatchForm {
            name: String::new(),
            channel: String::new(),
            coupon_template_id: String::new(),
            size: "1000".into(),
            variants: String::new(),
            contact_qr_url: String::new(),
            cost_per_card: String::new(),
            window_days: String::new(),
        }
    }
}

impl BatchForm {
    /// The batch the form describes: designs named in one box (equal weights; none is one
    /// `default` design), the printing cost in yuan.
    fn batch(&self, lang: Lang) -> Result<NewBatch, String> {
        let coupon_template_id =
            required_number(lang, "coupon_template_id", &self.coupon_template_id)?;
        let size = required_number(lang, "size", &self.size)?;
        Ok(NewBatch {
            name: self.name.clone(),
            channel: self.channel.trim().to_string(),
            coupon_template_id,
            size,
            variants: list(&self.variants)
                .into_iter()
                .map(|name| CardVariant { name, weight: 1 })
                .collect(),
            contact_qr_url: Some(self.contact_qr_url.trim().to_string()).filter(|u| !u.is_empty()),
            cost_per_card: opt_fen(lang, "cost_per_card", &self.cost_per_card)?
                .unwrap_or(Fen::ZERO),
            window_days: number(lang, "window_days", &self.window_days)?.unwrap_or(7),
        })
    }
}

/// `POST /console/acquire/card-batches`: a batch of unique card codes, listed with its PDF for
/// the printing shop; refused by field on the page with what was typed kept.
pub(crate) async fn create_batch(
    State(app): State<AppState>,
    u: ConsoleUser,
    f: Result<Form<BatchForm>, FormRejection>,
) -> Response {
    let f = match f {
        Ok(Form(f)) => f,
        Err(e) => return refused(&app, &u, unreadable(e)).await,
    };
    if let Err(e) = may_write(&u) {
        return refused(&app, &u, e).await;
    }
    let said = match f.batch(u.lang) {
        Err(said) => said,
        Ok(b) => match cards::create_batch(&app.db, u.caller.tenant_id, &b, now_ms()).await {
            Ok(_) => return Redirect::to("/console/acquire").into_response(),
            Err(cards::CardError::Invalid { field, reason }) => {
                // The designs box is named for what it holds on a card batch.
                let field = if field == "variants" {
                    "designs"
                } else {
                    field
                };
                refusals::invalid(u.lang, field, &reason)
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let typed = Typed {
        batch: f,
        ..Typed::default()
    };
    refused_with(&app, &u, said, StatusCode::BAD_REQUEST, typed).await
}

/// `POST /console/acquire/campaigns/{id}/launch`: the draft's audience becomes outbox
/// messages, as `POST /api/v1/campaigns/{id}/launch` does (idempotent); then the page says
/// what became of each customer.
pub(crate) async fn launch_campaign(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        may_write(&u)?;
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("campaign: {id:?} is not a campaign id")))?;
        let launched = campaigns::launch_then(
            &app.db,
            &app.cipher,
            &app.public_url,
            u.caller.tenant_id,
            id,
            now_ms(),
            Some(&app.outbox),
        )
        .await;
        match launched {
            // A send of the brand's approval size: asked for, it waits for a second person.
            Err(CampaignError::AwaitingApproval { .. }) => {
                approval::ask(&app.db, u.caller.tenant_id, id, &person(&u), now_ms()).await?;
                Ok::<_, ApiError>(format!("/console/acquire?asked={id}"))
            }
            other => {
                other?;
                app.outbox.notify();
                Ok(format!("/console/acquire?launched={id}"))
            }
        }
    };
    match r.await {
        // Back to the page, which reads the launch's counts: reloading it launches nothing.
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => refused(&app, &u, e).await,
    }
}

/// Who asks or approves, as stored: the user's name and id (names need not be unique).
fn person(u: &ConsoleUser) -> String {
    match u.caller.user_id {
        Some(id) => format!("{}（#{id}）", u.caller.name),
        None => u.caller.name.clone(),
    }
}

/// `POST /console/acquire/campaigns/{id}/approve`: an admin other than the one who asked
/// approves the send, and it goes out.
pub(crate) async fn approve_campaign(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        if u.caller.role != siyu::platform::access::Role::Admin {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                u.lang.aq().approve_admins_only,
            ));
        }
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("campaign: {id:?} is not a campaign id")))?;
        let tenant = u.caller.tenant_id;
        let approved = approval::approve(&app.db, tenant, id, &person(&u), now_ms())
            .await
            .map_err(|e| match e {
                CampaignError::Invalid { reason, .. } if reason.contains("may not approve") => {
                    ApiError::new(
                        axum::http::StatusCode::FORBIDDEN,
                        "maker_checker",
                        u.lang.aq().approve_not_self,
                    )
                }
                e => e.into(),
            })?;
        if !approved {
            // Another admin approved it a moment before: their launch sends it.
            return Ok(id);
        }
        campaigns::launch_then(
            &app.db,
            &app.cipher,
            &app.public_url,
            tenant,
            id,
            now_ms(),
            Some(&app.outbox),
        )
        .await?;
        app.outbox.notify();
        Ok::<_, ApiError>(id)
    };
    match r.await {
        Ok(id) => Redirect::to(&format!("/console/acquire?launched={id}")).into_response(),
        Err(e) => refused(&app, &u, e).await,
    }
}

/// `GET /console/acquire/card-batches/{id}/cards.pdf`: the print file, signed in by the
/// console's session (the API's needs a key).
pub(crate) async fn cards_pdf(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    print_file(&app, &u.caller, &id, PrintFile::Pdf)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /console/acquire/card-batches/{id}/cards.csv`: the cards for variable-data printing.
pub(crate) async fn cards_csv(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    print_file(&app, &u.caller, &id, PrintFile::Csv)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /console/acquire/campaigns/{id}/report.csv`: the campaign's report with the console's
/// session, under Chinese column names in zh-CN (the API's `/report.csv` takes a key).
pub(crate) async fn campaign_report_csv(
    State(app): State<AppState>,
    u: ConsoleUser,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return (axum::http::StatusCode::NOT_FOUND, "").into_response();
    };
    app.links.flush().await;
    match siyu::acquire::report::campaign_report(&app.db, u.caller.tenant_id, id).await {
        Ok(r) => {
            let text = match u.lang {
                crate::i18n::Lang::Zh => siyu::acquire::report::campaign_csv_zh(&r),
                crate::i18n::Lang::En => siyu::acquire::report::campaign_csv(&r),
            };
            crate::api::csv_response(&format!("campaign-{id}"), text.into_bytes())
        }
        Err(siyu::acquire::campaigns::CampaignError::NotFound(_)) => {
            (axum::http::StatusCode::NOT_FOUND, "").into_response()
        }
        Err(e) => super::server_error(e),
    }
}
