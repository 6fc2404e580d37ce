//! How a person gets into the status page: the proxy token typed once into a form (or a
//! one-time login link) becomes a server-side session held in an `HttpOnly`,
//! `SameSite=Strict` cookie whose `Path` is the page's own (`/status`). The cookie is good for
//! the page and its JSON only: the data endpoints and `/metrics` never look at it.
//!
//! Failed logins are counted per client address; after [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`] that address may not try again until the oldest failure leaves the window
//! (behind a reverse proxy every client shares the proxy's address, so they pause together:
//! forwarded headers are not trusted, as any client could forge them).
use crate::config::Secret;
use cookie::{Cookie, SameSite};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub(super) const COOKIE: &str = "b24ch_session";
/// The page and everything that accepts its cookie live under this path.
pub(super) const COOKIE_PATH: &str = "/status";
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub(super) const LOGIN_CODE_TTL: Duration = Duration::from_secs(15 * 60);
pub(super) const MAX_FAILURES: usize = 5;
pub(super) const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Bounds on what strangers can make the server remember.
const MAX_SESSIONS: usize = 1000;
const MAX_CODES: usize = 100;
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Whether the token presented (a form field or a bearer header) is the proxy token.
/// Constant time: `ct_eq` on slices of different lengths is false without an early exit on
/// content.
pub(super) fn token_eq(presented: &str, token: &Secret) -> bool {
    !token.is_empty() && bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// 256 random bits from the thread-local CSPRNG, as hex.
fn random_id() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A new session id for the cookie.
    Ok(String),
    /// Wrong token; this many tries left before the address pauses.
    Wrong { tries_left: usize },
    /// Too many failures from this address: no attempt is checked until then.
    Paused { retry_after: Duration },
}

#[derive(Default)]
struct Inner {
    /// Session id → expiry.
    sessions: HashMap<String, Instant>,
    /// One-time login code → expiry.
    codes: HashMap<String, Instant>,
    /// Recent failed logins per client address.
    failures: HashMap<Option<IpAddr>, VecDeque<Instant>>,
}

/// Sessions, one-time codes and the failure counts, all in memory (a restart logs people out).
pub struct PageAuth {
    /// Mark the cookie `Secure` (the page is served over HTTPS).
    secure: bool,
    inner: Mutex<Inner>,
}

impl PageAuth {
    pub fn new(secure: bool) -> Self {
        Self {
            secure,
            inner: Mutex::default(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    }

    /// Checks a token typed into the login form from `addr`.
    pub fn login(
        &self,
        addr: Option<IpAddr>,
        presented: &str,
        token: &Secret,
        now: Instant,
    ) -> Login {
        self.with(|i| {
            prune_failures(i, now);
            let failures = i.failures.get(&addr).map_or(0, VecDeque::len);
            if failures >= MAX_FAILURES {
                let oldest = i
                    .failures
                    .get(&addr)
                    .and_then(|f| f.front().copied())
                    .unwrap_or(now);
                let retry_after = (oldest + FAILURE_WINDOW).saturating_duration_since(now);
                return Login::Paused {
                    retry_after: retry_after.max(Duration::from_secs(1)),
                };
            }
            if token_eq(presented, token) {
                i.failures.remove(&addr);
                return Login::Ok(new_session(i, now));
            }
            if i.failures.len() >= MAX_TRACKED_ADDRESSES && !i.failures.contains_key(&addr) {
                // Only under a flood from many addresses: forget the quietest one.
                if let Some(k) = i
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.back().copied())
                    .map(|(k, _)| *k)
                {
                    i.failures.remove(&k);
                }
            }
            let f = i.failures.entry(addr).or_default();
            f.push_back(now);
            Login::Wrong {
                tries_left: MAX_FAILURES.saturating_sub(f.len()),
            }
        })
    }

    /// A one-time login code (for a link printed where the operator started b24ch).
    pub fn one_time_code(&self, now: Instant) -> String {
        self.with(|i| {
            i.codes.retain(|_, exp| *exp > now);
            if i.codes.len() >= MAX_CODES
                && let Some(k) = i
                    .codes
                    .iter()
                    .min_by_key(|(_, exp)| **exp)
                    .map(|(k, _)| k.clone())
            {
                i.codes.remove(&k);
            }
            let code = random_id();
            i.codes.insert(code.clone(), now + LOGIN_CODE_TTL);
            code
        })
    }

    /// Exchanges a one-time code for a session; a code works once, before it expires.
    pub fn redeem(&self, code: &str, now: Instant) -> Option<String> {
        self.with(|i| match i.codes.remove(code) {
            Some(exp) if exp > now => Some(new_session(i, now)),
            _ => None,
        })
    }

    /// Whether the `Cookie` header values carry a live session.
    pub fn has_session<'a>(
        &self,
        cookie_headers: impl Iterator<Item = &'a str>,
        now: Instant,
    ) -> bool {
        let ids = session_ids(cookie_headers);
        self.with(|i| {
            ids.iter()
                .any(|id| i.sessions.get(id).is_some_and(|exp| *exp > now))
        })
    }

    /// Ends the sessions named in the `Cookie` header values.
    pub fn logout<'a>(&self, cookie_headers: impl Iterator<Item = &'a str>) {
        let ids = session_ids(cookie_headers);
        self.with(|i| {
            for id in ids {
                i.sessions.remove(&id);
            }
        });
    }

    /// The `Set-Cookie` value that carries a new session.
    pub fn set_cookie(&self, id: &str) -> String {
        let max_age = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
        self.cookie(id.to_string())
            .max_age(cookie::time::Duration::seconds(max_age))
            .build()
            .to_string()
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    pub fn clear_cookie(&self) -> String {
        self.cookie(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build()
            .to_string()
    }

    fn cookie(&self, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((COOKIE, value))
            .path(COOKIE_PATH)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
    }
}

fn new_session(i: &mut Inner, now: Instant) -> String {
    i.sessions.retain(|_, exp| *exp > now);
    if i.sessions.len() >= MAX_SESSIONS
        && let Some(k) = i
            .sessions
            .iter()
            .min_by_key(|(_, exp)| **exp)
            .map(|(k, _)| k.clone())
    {
        i.sessions.remove(&k);
    }
    let id = random_id();
    i.sessions.insert(id.clone(), now + SESSION_TTL);
    id
}

fn prune_failures(i: &mut Inner, now: Instant) {
    i.failures.retain(|_, f| {
        while f
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= FAILURE_WINDOW)
        {
            f.pop_front();
        }
        !f.is_empty()
    });
}

fn session_ids<'a>(cookie_headers: impl Iterator<Item = &'a str>) -> Vec<String> {
    cookie_headers
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Secret {
        Secret::new("the-proxy-token-0123456789")
    }

    fn cookie_header(auth: &PageAuth, id: &str) -> String {
        let set = auth.set_cookie(id);
        set.split(';').next().unwrap_or_default().to_string()
    }

    #[test]
    fn a_login_makes_a_session_the_cookie_carries() {
        let auth = PageAuth::new(false);
        let now = Instant::now();
        let Login::Ok(id) = auth.login(None, "the-proxy-token-0123456789", &token(), now) else {
            panic!("the right token logs in");
        };
        assert_eq!(id.len(), 64);
        let header = cookie_header(&auth, &id);
        assert!(auth.has_session(std::iter::once(header.as_str()), now));
        let other = "theme=dark; b24ch_session=forged";
        assert!(!auth.has_session(std::iter::once(other), now));
        let later = now + SESSION_TTL + Duration::from_secs(1);
        assert!(
            !auth.has_session(std::iter::once(header.as_str()), later),
            "sessions expire"
        );
    }

    #[test]
    fn cookie_flags() {
        let plain = PageAuth::new(false).set_cookie("abc");
        for part in [
            "b24ch_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/status",
        ] {
            assert!(plain.contains(part), "{plain}");
        }
        assert!(plain.contains("Max-Age=43200"), "{plain}");
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(PageAuth::new(true).set_cookie("abc").contains("Secure"));
        let clear = PageAuth::new(false).clear_cookie();
        assert!(
            clear.contains("Max-Age=0") && clear.contains("Path=/status"),
            "{clear}"
        );
    }

    #[test]
    fn failures_pause_an_address_not_others() {
        let auth = PageAuth::new(false);
        let now = Instant::now();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        for n in 1..=MAX_FAILURES {
            assert_eq!(
                auth.login(a, "guess", &token(), now),
                Login::Wrong {
                    tries_left: MAX_FAILURES - n
                }
            );
        }
        let right = "the-proxy-token-0123456789";
        assert!(
            matches!(auth.login(a, right, &token(), now), Login::Paused { retry_after } if retry_after == FAILURE_WINDOW),
            "even the right token waits out the pause"
        );
        assert!(matches!(auth.login(b, right, &token(), now), Login::Ok(_)));
        let later = now + FAILURE_WINDOW;
        assert!(matches!(
            auth.login(a, right, &token(), later),
            Login::Ok(_)
        ));
    }

    #[test]
    fn a_one_time_code_works_once_and_expires() {
        let auth = PageAuth::new(false);
        let now = Instant::now();
        let code = auth.one_time_code(now);
        assert!(auth.redeem(&code, now).is_some());
        assert!(auth.redeem(&code, now).is_none(), "used once");
        let old = auth.one_time_code(now);
        assert!(auth.redeem(&old, now + LOGIN_CODE_TTL).is_none(), "expired");
        assert!(auth.redeem("", now).is_none());
    }

    #[test]
    fn logout_ends_the_session() {
        let auth = PageAuth::new(false);
        let now = Instant::now();
        let Login::Ok(id) = auth.login(None, "the-proxy-token-0123456789", &token(), now) else {
            panic!("login");
        };
        let header = cookie_header(&auth, &id);
        auth.logout(std::iter::once(header.as_str()));
        assert!(!auth.has_session(std::iter::once(header.as_str()), now));
    }

    #[test]
    fn an_empty_token_never_matches() {
        assert!(!token_eq("", &Secret::new("")));
        assert!(!token_eq("x", &Secret::new("")));
        assert!(!token_eq("the-proxy", &token()));
    }
}
