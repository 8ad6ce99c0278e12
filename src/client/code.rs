//! The authorization-code exchange: the first tokens of an app that is not installed through
//! `ONAPPINSTALL` (PROTOCOL.md 1.4), on the same token request as the refresh.

use std::fmt;
use std::time::Duration;

use super::auth::{request_tokens, Grant, TokenRequest};
use super::builder::parse_oauth_server;
use super::{DEFAULT_OAUTH_SERVER, DEFAULT_REQUEST_TIMEOUT};
use crate::auth::{OAuthApp, Secret, Tokens};
use crate::error::{Error, ErrorKind};

/// Exchanges an OAuth authorization code for an installation's first [`Tokens`]
/// (`grant_type=authorization_code` at `{oauth server}/oauth/token/`).
///
/// After the user authorizes the app (`https://{portal}/oauth/authorize/?client_id=...`),
/// the portal redirects to the app's URL with `code`, `domain`, `member_id`, `scope` and
/// `server_domain` in the query. The code lives **30 seconds** and works once; exchange it
/// right away. Docs: <https://apidocs.bitrix24.com/settings/oauth/index.html>.
///
/// The request is the same one a token refresh makes (a form `POST`, the client secret only
/// in its body, never to the portal), with the same typed errors. It goes to
/// [`DEFAULT_OAUTH_SERVER`](crate::DEFAULT_OAUTH_SERVER) (`https://oauth.bitrix.info`)
/// unless [`oauth_server`](Self::oauth_server) names another one, e.g.
/// `https://oauth.bitrix24.tech` or `https://{server_domain}` from the redirect.
///
/// ```no_run
/// # async fn f(code_from_the_redirect: &str) -> Result<(), bitrix24::Error> {
/// use bitrix24::{AuthorizationCode, Client, OAuthApp};
/// let app = OAuthApp::new("local.6570a8e5d0c1f2.12345678", "client-secret");
/// let tokens = AuthorizationCode::new(app.clone(), code_from_the_redirect)
///     .oauth_server("https://oauth.bitrix24.tech")
///     .exchange()
///     .await?;
/// let client = Client::oauth(app, tokens)?;
/// # Ok(()) }
/// ```
#[must_use = "nothing is exchanged until `exchange()` is awaited"]
pub struct AuthorizationCode {
    app: OAuthApp,
    code: Secret,
    oauth_server: Option<String>,
    http: Option<reqwest::Client>,
    timeout: Duration,
    user_agent: String,
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("client_id", &self.app.client_id)
            .field("code", &self.code)
            .field("oauth_server", &self.oauth_server)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AuthorizationCode {
    /// An exchange of `code` (the `code` query parameter of the redirect) for `app`.
    pub fn new(app: OAuthApp, code: impl Into<Secret>) -> Self {
        AuthorizationCode {
            app,
            code: code.into(),
            oauth_server: None,
            http: None,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: super::transport::USER_AGENT.to_owned(),
        }
    }

    /// The OAuth server to ask (default `https://oauth.bitrix.info`): an `https` URL, or
    /// plain `http` only on a loopback host (a local test server), as the client secret
    /// travels to it. Only its scheme, host and port are used (`/oauth/token/` is appended).
    pub fn oauth_server(mut self, url: impl Into<String>) -> Self {
        self.oauth_server = Some(url.into());
        self
    }

    /// Timeout of the request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `bitrix24-rust/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Use this `reqwest::Client` (proxies, custom TLS roots). It must not follow redirects
    /// (`redirect::Policy::none()`): a redirected answer is refused as
    /// [`ErrorKind::OAuthServer`] rather than trusted.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sends the exchange and returns the installation's tokens (`client_endpoint` is the
    /// portal's REST base; build a [`Client`](crate::Client) from them, and save them in
    /// your [`TokenStore`](crate::TokenStore)).
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: an empty code, or an OAuth server that is not an
    ///   `https` URL (plain `http` only on loopback);
    /// - [`ErrorKind::InvalidGrant`]: `invalid_grant` / `bad_verification_code`: the code is
    ///   wrong, expired (30 s) or already used; start the authorization again;
    /// - [`ErrorKind::InvalidClient`]: wrong `client_id` / `client_secret`, or the app is not
    ///   installed on the portal;
    /// - [`ErrorKind::WrongClient`]: the code belongs to another app;
    /// - [`ErrorKind::AppUnavailable`]: `PAYMENT_REQUIRED` or `NOT_INSTALLED`;
    /// - [`ErrorKind::OAuthServer`]: another error code, a non-JSON or redirected answer, an
    ///   answer without tokens or without `client_endpoint`;
    /// - [`ErrorKind::Transport`] / [`ErrorKind::Timeout`].
    ///
    /// No error text ever holds the client secret or the code.
    pub async fn exchange(self) -> Result<Tokens, Error> {
        if self.code.expose().trim().is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidInput).with_message("the authorization code is empty")
            );
        }
        let server = parse_oauth_server(
            self.oauth_server.as_deref().unwrap_or(DEFAULT_OAUTH_SERVER),
            "OAuth server",
        )?;
        let http = match self.http {
            Some(h) => h,
            None => super::transport::default_http_client()?,
        };
        let request = TokenRequest {
            http: &http,
            user_agent: &self.user_agent,
            timeout: self.timeout,
            server,
            app: &self.app,
            method: None,
        };
        request_tokens(request, Grant::AuthorizationCode { code: &self.code }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_code_and_the_secret() {
        let x = AuthorizationCode::new(OAuthApp::new("local.1", "CLIENT-SECRET"), "CODE-123456");
        let shown = format!("{x:?}");
        assert!(
            !shown.contains("CLIENT-SECRET") && !shown.contains("CODE-123456"),
            "{shown}"
        );
        assert!(shown.contains("local.1"));
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_anything_is_sent() {
        let app = OAuthApp::new("local.1", "CLIENT-SECRET");
        let e = AuthorizationCode::new(app.clone(), " ")
            .exchange()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        for server in [
            "http://oauth.example.com",
            "ftp://oauth.example.com",
            "nonsense",
        ] {
            let e = AuthorizationCode::new(app.clone(), "CODE-123456")
                .oauth_server(server)
                .exchange()
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{server}: {e}");
            let text = format!("{e} {e:?}");
            assert!(
                !text.contains("CODE-123456") && !text.contains("CLIENT-SECRET"),
                "{text}"
            );
        }
    }
}
