//! Credentials: read from the environment only, sent only in requests, never shown.

use std::fmt;

/// The variables credentials are read from.
pub const ENV_APP_CODE: &str = "BK_APP_CODE";
/// See [`ENV_APP_CODE`].
pub const ENV_APP_SECRET: &str = "BK_APP_SECRET";
/// See [`ENV_APP_CODE`].
pub const ENV_USERNAME: &str = "BK_USERNAME";
/// See [`ENV_APP_CODE`].
pub const ENV_TOKEN: &str = "BK_TOKEN";
/// See [`ENV_APP_CODE`].
pub const ENV_ACCESS_TOKEN: &str = "BK_ACCESS_TOKEN";

/// How the user is identified to ESB / the API gateway.
#[derive(Clone, PartialEq, Eq)]
pub enum UserAuth {
    /// `bk_username` (only for apps on the skip-user-auth whitelist).
    Username(String),
    /// `bk_token` (a login cookie).
    Token(String),
    /// `access_token` (OAuth).
    AccessToken(String),
}

/// App code, app secret and a user credential.
///
/// `Debug` and `Display` never show a secret: only the app code and which kind of user
/// credential is present. The values leave the process only inside the
/// `X-Bkapi-Authorization` header (and, for ESB v2, the request body).
///
/// An OAuth `access_token` identifies the app as well as the user, so it may come alone
/// ([`Credentials::access_token_only`]): the header is then `{"access_token": "..."}`, the
/// form BlueKing's own gateway client sends (bk-job-api.md §1.2).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    app_code: String,
    app_secret: String,
    user: UserAuth,
}

/// Which credential variables are missing from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials missing: set {}", .missing.join(", "))]
pub struct MissingCredentials {
    /// Variable names (or `BK_USERNAME|BK_TOKEN|BK_ACCESS_TOKEN` when no user credential is set).
    pub missing: Vec<String>,
}

impl Credentials {
    /// Credentials from explicit values.
    pub fn new(app_code: impl Into<String>, app_secret: impl Into<String>, user: UserAuth) -> Self {
        Credentials {
            app_code: app_code.into(),
            app_secret: app_secret.into(),
            user,
        }
    }

    /// Only an OAuth access token (no app code or secret).
    pub fn access_token_only(token: impl Into<String>) -> Self {
        Credentials {
            app_code: String::new(),
            app_secret: String::new(),
            user: UserAuth::AccessToken(token.into()),
        }
    }

    /// Reads `BK_APP_CODE`, `BK_APP_SECRET` and one of `BK_ACCESS_TOKEN`, `BK_TOKEN`,
    /// `BK_USERNAME` (in that order of preference) from the process environment.
    /// `BK_ACCESS_TOKEN` alone (neither app variable set) is enough: see
    /// [`Credentials::access_token_only`].
    pub fn from_env() -> Result<Self, MissingCredentials> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Credentials::from_env`], with a custom variable lookup (for tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MissingCredentials> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let app_code = get(ENV_APP_CODE);
        let app_secret = get(ENV_APP_SECRET);
        let user = get(ENV_ACCESS_TOKEN)
            .map(UserAuth::AccessToken)
            .or_else(|| get(ENV_TOKEN).map(UserAuth::Token))
            .or_else(|| get(ENV_USERNAME).map(UserAuth::Username));
        if let (None, None, Some(UserAuth::AccessToken(token))) = (&app_code, &app_secret, &user) {
            return Ok(Credentials::access_token_only(token.clone()));
        }
        let mut missing = Vec::new();
        if app_code.is_none() {
            missing.push(ENV_APP_CODE.to_owned());
        }
        if app_secret.is_none() {
            missing.push(ENV_APP_SECRET.to_owned());
        }
        if user.is_none() {
            missing.push(format!(
                "one of {ENV_USERNAME}, {ENV_TOKEN}, {ENV_ACCESS_TOKEN}"
            ));
        }
        match (app_code, app_secret, user) {
            (Some(app_code), Some(app_secret), Some(user)) => Ok(Credentials {
                app_code,
                app_secret,
                user,
            }),
            _ => Err(MissingCredentials { missing }),
        }
    }

    /// The app code (not a secret; shown in diagnostics).
    pub fn app_code(&self) -> &str {
        &self.app_code
    }

    /// The key/value pairs of the credential, as ESB and the gateway name them (the app pair
    /// left out for an access token alone).
    pub(crate) fn pairs(&self) -> Vec<(&'static str, &str)> {
        let user = match &self.user {
            UserAuth::Username(v) => ("bk_username", v.as_str()),
            UserAuth::Token(v) => ("bk_token", v.as_str()),
            UserAuth::AccessToken(v) => ("access_token", v.as_str()),
        };
        let mut pairs = Vec::with_capacity(3);
        if !self.app_code.is_empty() || !self.app_secret.is_empty() {
            pairs.push(("bk_app_code", self.app_code.as_str()));
            pairs.push(("bk_app_secret", self.app_secret.as_str()));
        }
        pairs.push(user);
        pairs
    }

    /// The `X-Bkapi-Authorization` header value: a JSON object string.
    pub(crate) fn header_value(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .pairs()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// The secret values (the app secret and a token; not the app code or a username, which
    /// are identifiers): what [`Scrubber`](super::Scrubber) withholds.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let token = match &self.user {
            UserAuth::Username(_) => None,
            UserAuth::Token(v) | UserAuth::AccessToken(v) => Some(v.as_str()),
        };
        std::iter::once(self.app_secret.as_str())
            .chain(token)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.user {
            UserAuth::Username(_) => "bk_username",
            UserAuth::Token(_) => "bk_token",
            UserAuth::AccessToken(_) => "access_token",
        };
        f.debug_struct("Credentials")
            .field("app_code", &self.app_code)
            .field("app_secret", &"<redacted>")
            .field(kind, &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserAuth::Username(_) => f.write_str("Username(<redacted>)"),
            UserAuth::Token(_) => f.write_str("Token(<redacted>)"),
            UserAuth::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_named() {
        let err = Credentials::from_lookup(|n| (n == ENV_APP_CODE).then(|| "app".to_owned()))
            .expect_err("incomplete");
        assert_eq!(err.missing[0], "BK_APP_SECRET");
        assert!(
            err.to_string()
                .contains("one of BK_USERNAME, BK_TOKEN, BK_ACCESS_TOKEN")
        );
    }

    #[test]
    fn an_access_token_may_come_alone() {
        let creds =
            Credentials::from_lookup(|n| (n == ENV_ACCESS_TOKEN).then(|| "oauth-123".to_owned()))
                .expect("a token alone is enough");
        let header: serde_json::Value =
            serde_json::from_str(&creds.header_value()).expect("header is JSON");
        assert_eq!(header, serde_json::json!({"access_token": "oauth-123"}));
        assert!(!format!("{creds:?}").contains("oauth-123"));
        assert_eq!(creds.secrets(), vec!["oauth-123"]);
        // With the app pair, the token joins it.
        let creds = Credentials::from_lookup(|n| match n {
            ENV_APP_CODE => Some("app".into()),
            ENV_APP_SECRET => Some("sec-456".into()),
            ENV_ACCESS_TOKEN => Some("oauth-123".into()),
            _ => None,
        })
        .expect("complete");
        let header: serde_json::Value =
            serde_json::from_str(&creds.header_value()).expect("header is JSON");
        assert_eq!(
            header,
            serde_json::json!({"bk_app_code": "app", "bk_app_secret": "sec-456", "access_token": "oauth-123"})
        );
        // An app code without its secret is still incomplete, token or not.
        let err = Credentials::from_lookup(|n| match n {
            ENV_APP_CODE => Some("app".into()),
            ENV_ACCESS_TOKEN => Some("oauth-123".into()),
            _ => None,
        })
        .expect_err("secret missing");
        assert_eq!(err.missing, vec!["BK_APP_SECRET".to_owned()]);
    }

    #[test]
    fn debug_redacts_every_secret() {
        let creds = Credentials::new("app", "s3cr3t-value", UserAuth::Token("tok-9876".into()));
        let shown = format!("{creds:?} {:?}", UserAuth::Username("alice".into()));
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains("tok-9876"));
        assert!(!shown.contains("alice"));
        assert!(shown.contains("app"));
        let header: serde_json::Value =
            serde_json::from_str(&creds.header_value()).expect("header is JSON");
        assert_eq!(header["bk_token"], "tok-9876");
        assert_eq!(header["bk_app_secret"], "s3cr3t-value");
    }
}
