//! How the brand looks on its customers' pages (H5 activities, coupons, package cards): its name
//! (the tenant's), a colour for buttons and prices, and a logo. Kept as the tenant setting
//! `brand.look`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::TenantId;
use super::db::{Db, DbError, sql};
use super::refusal::{Refusal, Refuse};
use super::tenant_settings;

const SETTING: &str = "brand.look";

/// The colour customer pages use until the brand picks its own.
pub const DEFAULT_COLOR: &str = "#e4393c";

/// What the brand set: either may be unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Look {
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
}

/// The brand as a customer page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Brand {
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub logo_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for BrandError {
    fn refusal(&self) -> Refusal {
        match self {
            BrandError::Invalid { .. } => Refusal::Invalid,
            BrandError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: &str) -> BrandError {
    BrandError::Invalid {
        field,
        reason: reason.to_owned(),
    }
}

/// `#rgb` or `#rrggbb` as `#rrggbb`, lower case.
fn hex_color(v: &str) -> Option<String> {
    let h = v.trim().strip_prefix('#')?;
    if !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let full = match h.len() {
        3 => h.chars().flat_map(|c| [c, c]).collect(),
        6 => h.to_owned(),
        _ => return None,
    };
    Some(format!("#{}", full.to_ascii_lowercase()))
}

/// WCAG contrast of white text on `#rrggbb`.
fn contrast_with_white(color: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&color[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    1.05 / (l + 0.05)
}

/// The look as it will be kept: a colour white text reads on (buttons carry white words), a
/// logo at an https address (customer pages load it; an http one would be blocked or warned
/// about on a phone).
pub fn check(look: &Look) -> Result<Look, BrandError> {
    let color = match look.color.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => {
            let c =
                hex_color(c).ok_or_else(|| invalid("color", "must be a colour like #e4393c"))?;
            // 3:1 is WCAG's floor for large text, as button words are.
            if contrast_with_white(&c) < 3.0 {
                return Err(invalid(
                    "color",
                    "is too light for the white words on buttons (contrast below 3:1)",
                ));
            }
            Some(c)
        }
    };
    let logo_url = match look.logo_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => {
            let ok = u.starts_with("https://")
                && u.len() > "https://".len()
                && u.len() <= 500
                && !u.contains(|c: char| c.is_whitespace() || "\"'<>\\`".contains(c));
            if !ok {
                return Err(invalid(
                    "logo_url",
                    "must be an https address of at most 500 characters",
                ));
            }
            Some(u.to_owned())
        }
    };
    Ok(Look { color, logo_url })
}

/// What the brand set.
pub async fn look(db: &Db, tenant: TenantId) -> Result<Look, DbError> {
    Ok(tenant_settings::get(db, tenant, SETTING)
        .await?
        .unwrap_or_default())
}

/// The brand's name.
pub async fn name(db: &Db, tenant: TenantId) -> Result<String, DbError> {
    let (name,): (String,) = db
        .fetch_one(&sql("SELECT name FROM tenants WHERE id = $1").bind(tenant))
        .await?;
    Ok(name)
}

/// The brand as its customers' pages show it.
pub async fn load(db: &Db, tenant: TenantId) -> Result<Brand, DbError> {
    let name = name(db, tenant).await?;
    let l = look(db, tenant).await?;
    Ok(Brand {
        name,
        color: l.color.unwrap_or_else(|| DEFAULT_COLOR.to_owned()),
        logo_url: l.logo_url,
    })
}

/// Checks and keeps the look; the pages use it from their next load.
pub async fn save(db: &Db, tenant: TenantId, look: &Look, now: i64) -> Result<Look, BrandError> {
    let l = check(look)?;
    tenant_settings::put(db, tenant, SETTING, &l, now).await?;
    Ok(l)
}

/// How long a server shows a brand's look before reading it again: every customer page asks
/// for it, and a change reaches every server within this.
const FRESH: Duration = Duration::from_secs(60);

/// Brands' looks as customer pages show them, read from the store at most once a minute per
/// brand on each server; the server that saves a look forgets its copy at once.
#[derive(Default)]
pub struct BrandCache {
    held: Mutex<HashMap<TenantId, (Instant, Brand)>>,
}

impl BrandCache {
    pub async fn get(&self, db: &Db, tenant: TenantId) -> Result<Brand, DbError> {
        if let Some((at, b)) = self.lock().get(&tenant)
            && at.elapsed() < FRESH
        {
            return Ok(b.clone());
        }
        let b = load(db, tenant).await?;
        self.lock().insert(tenant, (Instant::now(), b.clone()));
        Ok(b)
    }

    pub fn forget(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (Instant, Brand)>> {
        // A panic holding the lock leaves a map of plain values: keep using it.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(color: &str, logo: &str) -> Look {
        Look {
            color: Some(color.into()),
            logo_url: Some(logo.into()),
        }
    }

    #[test]
    fn colours_and_logos_are_kept_as_pages_can_use_them() {
        let l = check(&look("#1A7F37", " https://cdn.tea.cn/logo.png ")).expect("good");
        assert_eq!(l.color.as_deref(), Some("#1a7f37"));
        assert_eq!(l.logo_url.as_deref(), Some("https://cdn.tea.cn/logo.png"));
        assert_eq!(
            check(&look("#c00", "")).expect("short").color.as_deref(),
            Some("#cc0000")
        );
        assert_eq!(check(&Look::default()).expect("none"), Look::default());
        for bad in ["red", "#12345", "#ggg000", "e4393c"] {
            assert!(
                matches!(
                    check(&look(bad, "")),
                    Err(BrandError::Invalid { field: "color", .. })
                ),
                "{bad}"
            );
        }
        // White on pale yellow cannot be read.
        assert!(matches!(
            check(&look("#ffe680", "")),
            Err(BrandError::Invalid { field: "color", .. })
        ));
        for bad in [
            "http://cdn.tea.cn/logo.png",
            "https://",
            "https://x.cn/a b.png",
            "https://x.cn/\"onerror=1",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(
                    check(&look("#e4393c", bad)),
                    Err(BrandError::Invalid {
                        field: "logo_url",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_red_reads_white_words() {
        assert!(contrast_with_white(DEFAULT_COLOR) >= 3.0);
        assert!((contrast_with_white("#000000") - 21.0).abs() < 1e-9);
    }
}
