//! The authorization-code exchange (PROTOCOL.md 1.4) against the fake portal's OAuth server:
//! first tokens that work, a used or expired code, wrong credentials, no secret in any
//! error, no redirect followed.

use std::time::Duration;

use bitrix24::{AuthorizationCode, Client, ErrorKind, OAuthApp};
use bitrix24_testkit::{AppSpec, FakePortal, InstalledApp};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The OAuth server's base URL (`http://127.0.0.1:<port>`): the token URL without its path.
fn oauth_base(portal: &FakePortal) -> String {
    portal
        .oauth_token_url()
        .trim_end_matches("/oauth/token/")
        .to_owned()
}

async fn installed(portal: &FakePortal, user_id: u64) -> InstalledApp {
    portal.install_app(AppSpec::new().user_id(user_id)).await
}

/// Asserts that neither the client secret nor the code is in the error's texts.
fn assert_secret_free(e: &bitrix24::Error, secret: &str, code: &str) {
    let texts = [
        format!("{e}"),
        format!("{e:?}"),
        e.description().unwrap_or("").to_owned(),
        e.body_snippet().unwrap_or("").to_owned(),
        std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default(),
    ];
    for text in texts {
        assert!(!text.contains(secret), "client secret in {text}");
        assert!(!text.contains(code), "code in {text}");
    }
}

#[tokio::test]
async fn a_code_gives_tokens_that_work() {
    let portal = FakePortal::start().await;
    let app = installed(&portal, 1).await;
    let code = portal.authorization_code(&app.client_id, 3);

    let tokens = AuthorizationCode::new(app.app.clone(), code.as_str())
        .oauth_server(oauth_base(&portal))
        .exchange()
        .await
        .unwrap();
    assert_eq!(tokens.client_endpoint, portal.rest_url());
    assert_eq!(
        tokens.member_id.as_deref(),
        Some(portal.member_id().as_str())
    );
    assert!(tokens.expires.is_some());
    assert_ne!(tokens.access_token, app.tokens.access_token, "a new pair");

    let requests = portal.token_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.grant_type.as_str(), r.client_id.as_str(), r.via.as_str()),
        ("authorization_code", app.client_id.as_str(), "POST")
    );
    assert_eq!((r.status, r.error.as_deref()), (200, None));

    // The tokens belong to the user who authorized, and a client built from them works,
    // refresh included.
    let client = Client::builder()
        .oauth(app.app.clone(), tokens)
        .oauth_server(oauth_base(&portal))
        .build()
        .unwrap();
    assert_eq!(client.user().current().await.unwrap().id, 3);
    portal.expire_tokens();
    assert_eq!(client.user().current().await.unwrap().id, 3);
    assert_eq!(portal.token_requests()[1].grant_type, "refresh_token");
}

#[tokio::test]
async fn oauth_app_exchange_code_is_the_same_exchange() {
    // `OAuthApp::exchange_code` goes to https://oauth.bitrix.info; here the same request
    // through `AuthorizationCode` checks that both take the same path (a used code is
    // refused the same way).
    let portal = FakePortal::start().await;
    let app = installed(&portal, 1).await;
    let code = portal.authorization_code(&app.client_id, 1);
    let first = AuthorizationCode::new(app.app.clone(), code.as_str())
        .oauth_server(oauth_base(&portal))
        .timeout(Duration::from_secs(5))
        .exchange()
        .await;
    assert!(first.is_ok());
    fn is_send<T: Send + 'static>(_: &T) {}
    is_send(&app.app.exchange_code(code.as_str()));
}

#[tokio::test]
async fn a_used_or_expired_code_is_invalid_grant() {
    let portal = FakePortal::start().await;
    let app = installed(&portal, 1).await;
    let secret = app.client_secret.clone();
    let code = portal.authorization_code(&app.client_id, 1);
    let exchange = |code: &str| {
        AuthorizationCode::new(app.app.clone(), code)
            .oauth_server(oauth_base(&portal))
            .exchange()
    };
    exchange(&code).await.unwrap();

    let e = exchange(&code).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidGrant, "{e:?}");
    assert_eq!(e.code(), Some("invalid_grant"));
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.method_name(), None, "no REST method is involved");
    let shown = e.to_string();
    assert!(shown.contains("authorization code"), "{shown}");
    assert!(!shown.contains("refresh token"), "{shown}");
    assert!(e.is_reauthorization_required(), "{e:?}");
    assert_secret_free(&e, &secret, &code);

    // Codes live 30 seconds.
    let late = portal.authorization_code(&app.client_id, 1);
    portal.advance(Duration::from_secs(31));
    let e = exchange(&late).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidGrant, "{e:?}");
    assert_secret_free(&e, &secret, &late);

    // A code that was never issued.
    let e = exchange("n0t-a-c0de-at-all").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidGrant, "{e:?}");
    assert_secret_free(&e, &secret, "n0t-a-c0de-at-all");
}

#[tokio::test]
async fn wrong_credentials_are_typed_and_never_show_the_secret_or_the_code() {
    let portal = FakePortal::start().await;
    let app = installed(&portal, 1).await;

    let code = portal.authorization_code(&app.client_id, 1);
    let wrong_secret = OAuthApp::new(app.client_id.clone(), "wr0ng-s3cret-value");
    let e = AuthorizationCode::new(wrong_secret, code.as_str())
        .oauth_server(oauth_base(&portal))
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidClient, "{e:?}");
    assert_eq!(e.code(), Some("invalid_client"));
    assert_secret_free(&e, "wr0ng-s3cret-value", &code);
    assert_secret_free(&e, &app.client_secret, &code);

    // An app the OAuth server does not know: `wrong_client`, with HTTP 200.
    let code = portal.authorization_code(&app.client_id, 1);
    let unknown = OAuthApp::new("local.0000000000000.00000000", app.client_secret.clone());
    let e = AuthorizationCode::new(unknown, code.as_str())
        .oauth_server(oauth_base(&portal))
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongClient, "{e:?}");
    assert_eq!(e.status(), Some(200));
    assert_secret_free(&e, &app.client_secret, &code);
}

#[tokio::test]
async fn the_oauth_server_must_be_https_or_loopback_and_its_redirects_are_not_followed() {
    let app = OAuthApp::new("local.1", "cl1ent-s3cret-value");
    let e = AuthorizationCode::new(app.clone(), "c0de-123456")
        .oauth_server("http://oauth.example.com")
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");

    // A server that answers with a redirect (which would carry the secret along).
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"access_token":"a","refresh_token":"r","client_endpoint":"https://x/rest/"}"#,
        ))
        .mount(&elsewhere)
        .await;
    let redirecting = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/oauth/token/", elsewhere.uri())),
        )
        .mount(&redirecting)
        .await;
    let e = AuthorizationCode::new(app.clone(), "c0de-123456")
        .oauth_server(redirecting.uri())
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthServer, "{e:?}");
    assert_eq!(e.status(), Some(307));
    assert_secret_free(&e, "cl1ent-s3cret-value", "c0de-123456");
    let followed = elsewhere.received_requests().await.unwrap_or_default();
    assert!(followed.is_empty(), "the redirect was followed");

    // A user's HTTP client that follows redirects is caught too.
    let following = reqwest::Client::builder().build().unwrap();
    let e = AuthorizationCode::new(app, "c0de-123456")
        .oauth_server(redirecting.uri())
        .http_client(following)
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthServer, "{e:?}");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_secret_free(&e, "cl1ent-s3cret-value", "c0de-123456");
}

#[tokio::test]
async fn the_secret_and_the_code_are_never_echoed_from_an_odd_answer() {
    // An OAuth server that echoes the request in an error page.
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(503).set_body_string(format!(
                "<html>upstream failed for {}</html>",
                String::from_utf8_lossy(&req.body)
            ))
        })
        .mount(&server)
        .await;
    let app = OAuthApp::new("local.1", "cl1ent-s3cret-value");
    let e = AuthorizationCode::new(app, "c0de-123456")
        .oauth_server(server.uri())
        .exchange()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthServer, "{e:?}");
    assert!(e.body_snippet().unwrap().contains("upstream failed"));
    assert_secret_free(&e, "cl1ent-s3cret-value", "c0de-123456");
    let sent = &server.received_requests().await.unwrap()[0];
    let body = String::from_utf8_lossy(&sent.body);
    assert!(body.contains("grant_type=authorization_code"), "{body}");
    assert!(body.contains("code=c0de-123456"), "{body}");
    assert_eq!(sent.url.path(), "/oauth/token/");
    assert_eq!(
        sent.url.query(),
        None,
        "the secret travels in the body only"
    );
}
