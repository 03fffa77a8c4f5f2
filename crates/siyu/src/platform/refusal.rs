//! Why a request was refused, in the one shape every capability's errors share. Each domain
//! error says which kind it is ([`Refuse`]); the web layer turns a kind into an HTTP answer in
//! one place, so a new error needs no web code.

/// The kind of a refusal, with the short code API clients and H5 pages switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A field of the input is wrong; the error's message names the field and the reason.
    Invalid,
    /// What was asked for does not exist for this tenant or customer.
    NotFound(&'static str),
    /// The request conflicts with what is already there (sold out, claimed, already queued).
    Conflict(&'static str),
    /// A proof the caller gave was checked and rejected (a wrong or expired code, a bad rule).
    Rejected(&'static str),
    /// Asked again sooner than allowed.
    TooSoon(&'static str),
    /// The payment provider declined to take the money.
    PaymentDeclined,
    /// Something we depend on is busy or down: nothing was done, and a retry may succeed.
    Unavailable(&'static str),
    /// A provider's server (WeCom) answered with an error.
    Upstream(&'static str),
    /// A fault on our side that the caller cannot fix: logged, answered without detail.
    Internal,
}

/// An error that knows which [`Refusal`] it is. Its `Display` is what the log records; the
/// caller is told [`Refuse::told`], which is the same unless the detail is ours alone.
pub trait Refuse: std::fmt::Display {
    fn refusal(&self) -> Refusal;

    /// What the caller is told. [`Refusal::Internal`] is always answered without detail.
    fn told(&self) -> String {
        self.to_string()
    }
}

impl Refuse for super::db::DbError {
    fn refusal(&self) -> Refusal {
        Refusal::Internal
    }
}

impl Refuse for super::access::AccessError {
    fn refusal(&self) -> Refusal {
        use super::access::AccessError as E;
        match self {
            E::NoKey(_) | E::NoUser(_) | E::NoTenant(_) => Refusal::NotFound("not_found"),
            E::WeakPassword | E::BadRole(_) => Refusal::Invalid,
            E::TenantExists(_) | E::UserExists(_) => Refusal::Conflict("exists"),
            _ => Refusal::Internal,
        }
    }
}

impl Refuse for anyhow::Error {
    fn refusal(&self) -> Refusal {
        Refusal::Internal
    }
}
