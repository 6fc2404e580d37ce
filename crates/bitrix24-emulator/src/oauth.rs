//! OAuth access/refresh tokens on the simulated clock.

use std::collections::HashMap;

use super::config::OAuthConfig;
use super::hash::mix;

/// An OAuth/auth failure with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthError {
    pub status: u16,
    pub code: &'static str,
    pub description: &'static str,
}

pub(crate) const EXPIRED: AuthError = AuthError {
    status: 401,
    code: "expired_token",
    description: "The access token provided has expired",
};

pub(crate) const INVALID_TOKEN: AuthError = AuthError {
    status: 401,
    code: "invalid_token",
    description: "The access token provided is invalid",
};

pub(crate) const NO_AUTH: AuthError = AuthError {
    status: 401,
    code: "NO_AUTH_FOUND",
    description: "Wrong authorization data",
};

pub(crate) const INVALID_CREDENTIALS: AuthError = AuthError {
    status: 401,
    code: "INVALID_CREDENTIALS",
    description: "Invalid request credentials",
};

#[derive(Debug)]
pub(crate) struct OAuthState {
    /// access token → expiry (simulated unix seconds)
    access: HashMap<String, f64>,
    refresh: String,
    issued: u64,
}

/// A freshly issued token pair.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires: i64,
    pub expires_in: i64,
}

impl OAuthState {
    pub(crate) fn new(cfg: &OAuthConfig, now: f64) -> OAuthState {
        let mut access = HashMap::new();
        access.insert(cfg.access_token.clone(), now + cfg.access_token_ttl_secs);
        OAuthState {
            access,
            refresh: cfg.refresh_token.clone(),
            issued: 0,
        }
    }

    pub(crate) fn check(&self, token: &str, now: f64) -> Result<(), AuthError> {
        match self.access.get(token) {
            None => Err(INVALID_TOKEN),
            Some(exp) if *exp <= now => Err(EXPIRED),
            Some(_) => Ok(()),
        }
    }

    /// `grant_type=refresh_token`: validates the client and rotates the refresh token.
    pub(crate) fn refresh(
        &mut self,
        cfg: &OAuthConfig,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        now: f64,
    ) -> Result<Issued, (u16, &'static str, &'static str)> {
        if client_id != cfg.client_id || client_secret != cfg.client_secret {
            return Err((401, "invalid_client", "Invalid client credentials"));
        }
        if refresh_token.is_empty() || refresh_token != self.refresh {
            return Err((400, "invalid_grant", "Invalid refresh token"));
        }
        self.issued += 1;
        let token = |salt: u64| {
            format!(
                "{:016x}{:016x}",
                mix(self.issued ^ salt),
                mix(salt.wrapping_add(self.issued))
            )
        };
        let access_token = token(0xacce55);
        let refresh_token = token(0x2ef2e5);
        self.access
            .insert(access_token.clone(), now + cfg.access_token_ttl_secs);
        self.refresh = refresh_token.clone();
        Ok(Issued {
            access_token,
            refresh_token,
            expires: (now + cfg.access_token_ttl_secs).floor() as i64,
            expires_in: cfg.access_token_ttl_secs.round() as i64,
        })
    }
}
