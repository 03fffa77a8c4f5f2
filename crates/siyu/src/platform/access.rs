//! Tenants, API keys, console users and their sessions.

use crate::platform::TenantId;
use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use super::clock::now_ms;
use super::crypto::{random_token, token_hash};
use std::sync::LazyLock;

use super::db::{Db, DbError, Sql, sql};
use super::limits::{self, Budget, Window};

/// What a caller may do. Personal data (full phone numbers) is shown to admins only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Guide,
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "guide" => Some(Role::Guide),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Guide => "guide",
            Role::Viewer => "viewer",
        }
    }
    pub fn may_see_phone(self) -> bool {
        self == Role::Admin
    }
    pub fn may_write(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("tenant {0:?} already exists")]
    TenantExists(String),
    #[error("no tenant named {0:?}")]
    NoTenant(String),
    #[error("user {0:?} already exists in this tenant")]
    UserExists(String),
    #[error("unknown role {0:?}: use admin, operator, guide or viewer")]
    BadRole(String),
    #[error("password must be at least 8 characters")]
    WeakPassword,
    #[error("no API key starting {0:?} in this tenant")]
    NoKey(String),
    #[error("no user {0:?} in this tenant")]
    NoUser(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub time_zone: String,
    pub created_at: i64,
}

/// Who is calling: resolved from an API key or a console session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub role: Role,
    pub user_id: Option<i64>,
    pub name: String,
}

pub async fn create_tenant(db: &Db, name: &str) -> Result<Tenant, AccessError> {
    let name = name.trim();
    if find_tenant(db, name).await?.is_some() {
        return Err(AccessError::TenantExists(name.to_owned()));
    }
    let t: Tenant = db
        .fetch_one(
            &sql("INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id, name, time_zone, created_at")
                .bind(name)
                .bind(now_ms()),
        )
        .await?;
    Ok(t)
}

pub async fn find_tenant(db: &Db, name: &str) -> Result<Option<Tenant>, AccessError> {
    Ok(db
        .fetch_optional(
            &sql("SELECT id, name, time_zone, created_at FROM tenants WHERE name = $1")
                .bind(name.trim()),
        )
        .await?)
}

pub async fn tenant_by_name(db: &Db, name: &str) -> Result<Tenant, AccessError> {
    find_tenant(db, name)
        .await?
        .ok_or_else(|| AccessError::NoTenant(name.to_owned()))
}

/// Creates an API key and returns it in clear: the only time it is ever shown. The store keeps a
/// SHA-256 of it.
pub async fn create_api_key(
    db: &Db,
    tenant_id: TenantId,
    name: &str,
    role: Role,
) -> Result<String, AccessError> {
    let key = new_key();
    db.execute(&insert_key(tenant_id, name, &key, role, now_ms()))
        .await?;
    Ok(key)
}

fn new_key() -> String {
    format!("sy_{}", random_token(32))
}

/// The row of a new key: its first characters to list it by, and only a hash of the rest.
fn insert_key(tenant: TenantId, name: &str, key: &str, role: Role, now: i64) -> Sql {
    sql("INSERT INTO api_keys (tenant_id, name, prefix, key_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(tenant)
        .bind(name.to_owned())
        .bind(key[..10].to_owned())
        .bind(token_hash(key))
        .bind(role.as_str())
        .bind(now)
}

/// Resolves a bearer key to its caller; `None` for unknown or revoked keys.
pub async fn caller_by_api_key(db: &Db, key: &str) -> Result<Option<Caller>, AccessError> {
    let row: Option<(TenantId, String, String)> = db
        .fetch_optional(
            &sql("SELECT tenant_id, role, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(token_hash(key)),
        )
        .await?;
    Ok(row.and_then(|(tenant_id, role, name)| {
        Role::parse(&role).map(|role| Caller {
            tenant_id,
            role,
            user_id: None,
            name: format!("api key {name}"),
        })
    }))
}

pub fn hash_password(password: &str) -> Result<String, AccessError> {
    if password.chars().count() < 8 {
        return Err(AccessError::WeakPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

pub async fn create_user(
    db: &Db,
    tenant_id: TenantId,
    username: &str,
    display_name: &str,
    password: &str,
    role: Role,
) -> Result<i64, AccessError> {
    let hash = hash_password(password)?;
    let existing: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
                .bind(tenant_id)
                .bind(username),
        )
        .await?;
    if existing.is_some() {
        return Err(AccessError::UserExists(username.to_owned()));
    }
    let (id,): (i64,) = db
        .fetch_one(
            &sql("INSERT INTO users (tenant_id, username, display_name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(tenant_id)
                .bind(username)
                .bind(display_name)
                .bind(hash)
                .bind(role.as_str())
                .bind(now_ms()),
        )
        .await?;
    Ok(id)
}

/// Session lifetime for the console.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// What a sign-in came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Signed in: the session's token.
    Session(String),
    /// No such brand or user, or the wrong password (which one is not said).
    Wrong,
    /// Too many attempts from this address, or failures for this account, lately.
    Throttled,
}

/// Sign-in attempts from one address in [`LOGIN_WINDOW`], right or wrong.
pub const LOGINS_PER_ADDRESS: i64 = 30;
/// Wrong passwords for one account from one address in [`LOGIN_WINDOW`]: then that address
/// waits, and the account's owner signs in from anywhere else.
pub const FAILURES_PER_ACCOUNT_AND_ADDRESS: i64 = 10;
/// Wrong passwords for one account from all addresses together in [`LOGIN_WINDOW`]: a guess
/// spread over many addresses stops here. Locking the owner out takes this many failures from
/// at least ten addresses, where it took any ten attempts before.
pub const FAILURES_PER_ACCOUNT: i64 = 100;
pub const LOGIN_WINDOW: Window = Window::Minutes(15);

/// A password check waiting for a checker thread: the work, and who waits for its answer.
type PasswordCheck = Box<dyn FnOnce() + Send>;

/// Password checks (Argon2, tens of milliseconds of CPU each) run on threads of their own, half
/// the cores (at least one), at the idle CPU priority where the system allows it (SCHED_IDLE on
/// Linux, else nice 19): a flood of sign-ins then takes what the shop's requests leave of the
/// CPU, not a share of it (`siyu bench --suite login-flood`). Checks wait in line for a thread.
static PASSWORD_CHECKERS: LazyLock<Option<flume::Sender<PasswordCheck>>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (jobs, line) = flume::unbounded::<PasswordCheck>();
    let mut started = 0;
    for i in 0..(cores / 2).max(1) {
        let line = line.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("siyu-password-{i}"))
            .spawn(move || {
                lower_this_threads_priority();
                while let Ok(check) = line.recv() {
                    // A check that panics answers "no" (its answer is dropped) and the thread
                    // goes on: the line never loses the thread that empties it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
                }
            });
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "a password-check thread did not start"),
        }
    }
    (started > 0).then_some(jobs)
});

/// The idle scheduling class for the calling thread, or nice 19 where that is refused. At nice
/// 19 a check that found a core free keeps it for the rest of its time slice after a
/// request's thread wakes; an idle-class thread gives it up at once.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    if let Err(idle) = enter_the_idle_scheduling_class() {
        // Linux sets a thread's nice value by its thread id.
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
            tracing::debug!(%idle, error = %e, "password checks run at the normal priority");
        }
    }
}

/// SCHED_IDLE for the calling thread: it runs only when no other thread of the process wants
/// its core. Lowering one's own priority needs no privilege.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn enter_the_idle_scheduling_class() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread, and `param` is a valid sched_param that outlives
    // the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A hash made like users' hashes, checked when the brand or user is unknown so that the
/// answer takes as long as for a wrong password.
static UNKNOWN_USER_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("no user has this password").unwrap_or_default());

/// Starts the password-check threads, once per process. A server where none could start
/// refuses to start, rather than check passwords at the requests' priority (or not at all).
pub fn start_password_checks() -> std::io::Result<()> {
    match PASSWORD_CHECKERS.as_ref() {
        Some(_) => Ok(()),
        None => Err(std::io::Error::other(
            "no password-check thread could start",
        )),
    }
}

/// Makes the dummy hash now (on a blocking thread at start-up) rather than inside the first
/// sign-in for an unknown user, which would then take longer than any other and say so.
pub fn prepare_password_checks() {
    LazyLock::force(&UNKNOWN_USER_HASH);
}

/// Checks a password against a stored hash on a checker thread ([`PASSWORD_CHECKERS`]). With no
/// checker thread (an app is not built without them, see [`start_password_checks`]) the answer
/// is no.
async fn password_matches(password: &str, hash: String) -> bool {
    let password = password.to_owned();
    let check = move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    };
    let Some(checkers) = PASSWORD_CHECKERS.as_ref() else {
        return false;
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: PasswordCheck = Box::new(move || {
        // The sign-in went away while it waited in line (its client left): no work for it.
        if answer.is_closed() {
            return;
        }
        let _ = answer.send(check());
    });
    // The threads never leave the line (a panicking check is caught), so a send cannot fail; if
    // it did, the check is dropped and the answer is no.
    let _ = checkers.send(job);
    answered.await.unwrap_or(false)
}

/// Checks a console login from `address` (as the server trusts it); on success opens a
/// session. Every attempt counts against the address before the password is looked at; wrong
/// passwords count against the account from that address and from everywhere, so guessing is
/// slow from one place and for one account from many, while a stranger's guesses cannot lock
/// the owner out of an account from their own address.
pub async fn login(
    db: &Db,
    tenant: &str,
    username: &str,
    password: &str,
    address: &str,
) -> Result<Login, AccessError> {
    let now = now_ms();
    let account = token_hash(&format!("{}\u{0}{}", tenant.trim(), username.trim()));
    // The address is kept as a hash, like everything else the budgets count.
    let pair = token_hash(&format!("{account}\u{0}{address}"));
    let from_hash = token_hash(address);
    let from = Budget::across_tenants(
        "login_address",
        &from_hash,
        LOGIN_WINDOW,
        LOGINS_PER_ADDRESS,
    );
    let pair_failures = Budget::across_tenants(
        "login_failures",
        &pair,
        LOGIN_WINDOW,
        FAILURES_PER_ACCOUNT_AND_ADDRESS,
    );
    let account_failures = Budget::across_tenants(
        "login_account_failures",
        &account,
        LOGIN_WINDOW,
        FAILURES_PER_ACCOUNT,
    );
    // Sign-in budgets throttle and acknowledge nothing: a flood of sign-ins must not queue
    // PostgreSQL's log flushes in front of a shop's orders (`siyu bench --suite login-flood`).
    let mut tx = db.begin_unflushed().await?;
    if limits::take(&mut tx, from, now).await?.is_none()
        || limits::spent(&mut tx, pair_failures, now).await?
        || limits::spent(&mut tx, account_failures, now).await?
    {
        tx.commit().await?; // the attempt counts against the address
        return Ok(Login::Throttled);
    }
    tx.commit().await?;
    let user = match find_tenant(db, tenant).await? {
        Some(t) => db
            .fetch_optional::<(i64, String)>(
                &sql("SELECT id, password_hash FROM users WHERE tenant_id = $1 AND username = $2 AND disabled_at IS NULL")
                    .bind(t.id)
                    .bind(username.trim()),
            )
            .await?
            .map(|(user_id, hash)| (t.id, user_id, hash)),
        None => None,
    };
    let wrong = || async {
        // Only failures count against the account: its owner's own right password never does.
        let mut tx = db.begin_unflushed().await?;
        limits::take(&mut tx, pair_failures, now).await?;
        limits::take(&mut tx, account_failures, now).await?;
        tx.commit().await?;
        Ok::<_, AccessError>(Login::Wrong)
    };
    let Some((tenant_id, user_id, hash)) = user else {
        password_matches(password, UNKNOWN_USER_HASH.clone()).await;
        return wrong().await;
    };
    let checked_hash = hash.clone();
    if !password_matches(password, hash).await {
        return wrong().await;
    }
    let token = random_token(32);
    // Opened only if the password checked is still the user's and they are still enabled: a
    // password change or a disable during the check leaves no session behind. A session lost
    // to a crash in the moment after it opened costs its user one more sign-in, so its commit
    // does not wait for the disk either.
    let mut tx = db.begin_unflushed().await?;
    let opened = tx
        .execute(
            &sql("INSERT INTO sessions (token_hash, tenant_id, user_id, created_at, expires_at) \
                  SELECT $1, $2, $3, $4, $5 FROM users WHERE id = $3 AND password_hash = $6 AND disabled_at IS NULL")
                .bind(token_hash(&token))
                .bind(tenant_id)
                .bind(user_id)
                .bind(now)
                .bind(now + SESSION_MS)
                .bind(checked_hash),
        )
        .await?;
    tx.commit().await?;
    if opened == 0 {
        return Ok(Login::Wrong);
    }
    Ok(Login::Session(token))
}

pub async fn caller_by_session(db: &Db, token: &str) -> Result<Option<Caller>, AccessError> {
    let row: Option<(TenantId, i64, String, String)> = db
        .fetch_optional(
            &sql("SELECT s.tenant_id, s.user_id, u.role, u.display_name FROM sessions s JOIN users u ON u.id = s.user_id \
                  WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL")
                .bind(token_hash(token))
                .bind(now_ms()),
        )
        .await?;
    Ok(row.and_then(|(tenant_id, user_id, role, name)| {
        Role::parse(&role).map(|role| Caller {
            tenant_id,
            role,
            user_id: Some(user_id),
            name,
        })
    }))
}

pub async fn logout(db: &Db, token: &str) -> Result<(), AccessError> {
    db.execute(&sql("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash(token)))
        .await?;
    Ok(())
}

/// Who changed access: the CLI's operator or a signed-in admin.
pub type Actor<'a> = &'a str;

pub(crate) async fn audit(
    db: &Db,
    tenant: TenantId,
    actor: Actor<'_>,
    action: &str,
    subject: &str,
) -> Result<(), AccessError> {
    db.execute(&audit_entry(tenant, now_ms(), actor, action, subject))
        .await?;
    Ok(())
}

fn audit_entry(tenant: TenantId, at: i64, actor: Actor<'_>, action: &str, subject: &str) -> Sql {
    sql("INSERT INTO audit_log (tenant_id, at, actor, action, subject) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant)
        .bind(at)
        .bind(actor.to_owned())
        .bind(action.to_owned())
        .bind(subject.to_owned())
}

/// [`create_user`], written to the audit log.
pub async fn add_user(
    db: &Db,
    tenant: TenantId,
    username: &str,
    display_name: &str,
    password: &str,
    role: Role,
    actor: Actor<'_>,
) -> Result<i64, AccessError> {
    let id = create_user(db, tenant, username, display_name, password, role).await?;
    let subject = format!("user {username} ({})", role.as_str());
    audit(db, tenant, actor, "user_created", &subject).await?;
    Ok(id)
}

/// [`create_api_key`], written to the audit log.
pub async fn issue_api_key(
    db: &Db,
    tenant: TenantId,
    name: &str,
    role: Role,
    actor: Actor<'_>,
) -> Result<String, AccessError> {
    let key = create_api_key(db, tenant, name, role).await?;
    let subject = format!("key {} ({name}, {})", &key[..10], role.as_str());
    audit(db, tenant, actor, "key_created", &subject).await?;
    Ok(key)
}

/// An API key as an admin sees it: never the key itself, only its first characters.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn api_keys(db: &Db, tenant: TenantId) -> Result<Vec<ApiKeyRow>, AccessError> {
    Ok(db
        .fetch_all(
            &sql("SELECT id, name, prefix, role, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant),
        )
        .await?)
}

/// Revokes the tenant's key whose first characters are `prefix` (as listed): it stops working
/// at once. Revoking a revoked key changes nothing.
pub async fn revoke_api_key(
    db: &Db,
    tenant: TenantId,
    prefix: &str,
    actor: Actor<'_>,
) -> Result<(), AccessError> {
    let n = db
        .execute(
            &sql("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND prefix = $2 AND revoked_at IS NULL")
                .bind(tenant)
                .bind(prefix)
                .bind(now_ms()),
        )
        .await?;
    if n == 0 {
        let known = api_keys(db, tenant)
            .await?
            .iter()
            .any(|k| k.prefix == prefix);
        if !known {
            return Err(AccessError::NoKey(prefix.to_owned()));
        }
        return Ok(());
    }
    audit(db, tenant, actor, "key_revoked", &format!("key {prefix}")).await
}

/// Replaces the key whose first characters are `prefix` with a new one of the same name and role,
/// in one transaction: the old one stops working as the new one starts. Returns the new key (the
/// only time it is shown).
pub async fn rotate_api_key(
    db: &Db,
    tenant: TenantId,
    prefix: &str,
    actor: Actor<'_>,
) -> Result<String, AccessError> {
    let key = new_key();
    let now = now_ms();
    let mut tx = db.begin().await?;
    let row: Option<(String, String)> = tx
        .fetch_optional(
            &sql("SELECT name, role FROM api_keys WHERE tenant_id = $1 AND prefix = $2 AND revoked_at IS NULL")
                .bind(tenant)
                .bind(prefix),
        )
        .await?;
    let (name, role) = row.ok_or_else(|| AccessError::NoKey(prefix.to_owned()))?;
    let role = Role::parse(&role).ok_or(AccessError::BadRole(role))?;
    // Two rotations at once (a double click, two admins): only the one that revokes makes a key.
    let revoked = tx
        .execute(
            &sql("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND prefix = $2 AND revoked_at IS NULL")
                .bind(tenant)
                .bind(prefix)
                .bind(now),
        )
        .await?;
    if revoked != 1 {
        return Err(AccessError::NoKey(prefix.to_owned()));
    }
    tx.execute(&insert_key(tenant, &name, &key, role, now))
        .await?;
    let subject = format!("key {prefix} → {} ({name}, {})", &key[..10], role.as_str());
    tx.execute(&audit_entry(tenant, now, actor, "key_rotated", &subject))
        .await?;
    tx.commit().await?;
    Ok(key)
}

/// A console user as an admin sees them.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

pub async fn users(db: &Db, tenant: TenantId) -> Result<Vec<UserRow>, AccessError> {
    Ok(db
        .fetch_all(
            &sql("SELECT id, username, display_name, role, created_at, disabled_at FROM users WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant),
        )
        .await?)
}

/// Disables a console user: they cannot sign in, and their sessions end now.
pub async fn disable_user(
    db: &Db,
    tenant: TenantId,
    username: &str,
    actor: Actor<'_>,
) -> Result<(), AccessError> {
    let id = user_id(db, tenant, username).await?;
    db.execute(
        &sql("UPDATE users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL")
            .bind(tenant)
            .bind(id)
            .bind(now_ms()),
    )
    .await?;
    end_sessions(db, id).await?;
    audit(
        db,
        tenant,
        actor,
        "user_disabled",
        &format!("user {username}"),
    )
    .await
}

/// Gives a console user a new password; their sessions end, so a stolen one stops working.
pub async fn set_password(
    db: &Db,
    tenant: TenantId,
    username: &str,
    password: &str,
    actor: Actor<'_>,
) -> Result<(), AccessError> {
    let hash = hash_password(password)?;
    let id = user_id(db, tenant, username).await?;
    db.execute(
        &sql("UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(hash),
    )
    .await?;
    end_sessions(db, id).await?;
    audit(
        db,
        tenant,
        actor,
        "password_changed",
        &format!("user {username}"),
    )
    .await
}

async fn user_id(db: &Db, tenant: TenantId, username: &str) -> Result<i64, AccessError> {
    let row: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
                .bind(tenant)
                .bind(username.trim()),
        )
        .await?;
    row.map(|(id,)| id)
        .ok_or_else(|| AccessError::NoUser(username.to_owned()))
}

async fn end_sessions(db: &Db, user: i64) -> Result<(), AccessError> {
    db.execute(&sql("DELETE FROM sessions WHERE user_id = $1").bind(user))
        .await?;
    Ok(())
}

/// Deletes sessions that ended (they are refused anyway); returns how many.
pub async fn purge_sessions(db: &Db, now: i64) -> Result<u64, AccessError> {
    Ok(db
        .execute(&sql("DELETE FROM sessions WHERE expires_at <= $1").bind(now))
        .await?)
}

/// One change of access, as the audit log holds it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
}

/// The tenant's latest changes of access, newest first.
pub async fn audit_log(
    db: &Db,
    tenant: TenantId,
    limit: i64,
) -> Result<Vec<AuditEntry>, AccessError> {
    Ok(db
        .fetch_all(
            &sql("SELECT at, actor, action, subject FROM audit_log WHERE tenant_id = $1 ORDER BY at DESC, id DESC LIMIT $2")
                .bind(tenant)
                .bind(limit),
        )
        .await?)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// Each thread's scheduling policy and nice value, by the name it was given
    /// (`/proc/self/task/*/stat`, fields 41 and 19).
    fn priority_of_threads_named(prefix: &str) -> Vec<(i64, i64)> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .filter_map(|t| {
                let t = t.ok()?.path();
                let name = std::fs::read_to_string(t.join("comm")).ok()?;
                if !name.starts_with(prefix) {
                    return None;
                }
                let stat = std::fs::read_to_string(t.join("stat")).ok()?;
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                Some((fields.get(38)?.parse().ok()?, fields.get(16)?.parse().ok()?))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_check_that_panics_leaves_every_checker_thread_working() {
        if let Some(line) = super::PASSWORD_CHECKERS.as_ref() {
            // More panics than there are threads, so that some thread meets one (the line does
            // not say which); every check after them is still answered.
            for _ in 0..8 {
                let _ = line.send(Box::new(|| {
                    panic!("a password check panicked (on purpose)")
                }));
            }
        }
        let hash = super::hash_password("a right password").expect("hash");
        for _ in 0..4 {
            assert!(super::password_matches("a right password", hash.clone()).await);
        }
    }

    #[tokio::test]
    async fn password_checks_run_below_the_requests_priority() {
        let hash = super::hash_password("a right password").expect("hash");
        assert!(super::password_matches("a right password", hash.clone()).await);
        assert!(!super::password_matches("a wrong one", hash).await);
        let priority = priority_of_threads_named("siyu-password");
        assert!(!priority.is_empty(), "the checks ran on their own threads");
        // The idle class, or nice 19 where a sandbox refuses it.
        assert!(
            priority
                .iter()
                .all(|&(policy, nice)| policy == i64::from(libc::SCHED_IDLE)
                    || (policy == i64::from(libc::SCHED_OTHER) && nice == 19)),
            "(policy, nice): {priority:?}"
        );
    }
}
