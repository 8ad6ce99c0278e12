//! Error classification: the `error` code first (any status, even 200), the HTTP status second,
//! decode errors with their JSON path.

#![allow(deprecated)] // the classic imbot.* methods are deprecated by Bitrix24

mod common;

use bitrix24::{Error, ErrorKind};
use common::*;
use serde_json::json;
use wiremock::ResponseTemplate;

async fn user_current_error(answer: ResponseTemplate) -> Error {
    let (client, server) = answering("user.current", answer).await;
    // No retries, and a deadline too short to wait out a rate limit: one request, and the
    // error as the portal sent it.
    let e = client
        .user()
        .current()
        .retry(bitrix24::Retry::never())
        .timeout(std::time::Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(requests(&server).await.len(), 1, "one request");
    assert_eq!(e.method_name(), Some("user.current"));
    e
}

#[tokio::test]
async fn an_error_code_with_http_200_is_an_api_error() {
    let e = user_current_error(json_response(
        200,
        r#"{"error":"ACCESS_DENIED","error_description":"Access denied! Available only on extended plans"}"#,
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert_eq!(e.code(), Some("ACCESS_DENIED"));
    assert_eq!(
        e.description(),
        Some("Access denied! Available only on extended plans")
    );
    assert_eq!(e.status(), Some(200));
    assert!(
        e.is_code("access_denied"),
        "codes compare case-insensitively"
    );
    assert!(!e.is_auth() && !e.is_transport() && !e.is_rate_limited());
    // `method: CODE: description`, then the status.
    assert_eq!(
        e.to_string(),
        "user.current: ACCESS_DENIED: Access denied! Available only on extended plans (HTTP 200)"
    );
    assert!(std::error::Error::source(&e).is_none());
}

#[tokio::test]
async fn query_limit_exceeded_is_rate_limited() {
    let e = user_current_error(fixture_response("error-query-limit-exceeded.503.json")).await;
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert!(e.is_rate_limited());
    assert!(!e.is_operation_time_limit());
    assert_eq!(e.code(), Some("QUERY_LIMIT_EXCEEDED"));
    assert_eq!(e.description(), Some("Too many requests"));
    assert_eq!(e.status(), Some(503));
    assert_eq!(
        e.to_string(),
        "user.current: QUERY_LIMIT_EXCEEDED: Too many requests (HTTP 503)"
    );
}

#[tokio::test]
async fn operation_time_limit_is_recognised() {
    let e = user_current_error(fixture_response("error-operation-time-limit.429.json")).await;
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert!(e.is_operation_time_limit());
    assert!(!e.is_rate_limited());
    assert_eq!(e.code(), Some("OPERATION_TIME_LIMIT"));
    assert_eq!(e.status(), Some(429));
}

#[tokio::test]
async fn an_html_page_is_an_http_error_with_a_snippet() {
    let page = "<html>\n<head><title>429 Too Many Requests</title></head>\n<body>\n<center><h1>429 Too Many Requests</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n";
    let e = user_current_error(
        ResponseTemplate::new(429).set_body_raw(page.as_bytes().to_vec(), "text/html"),
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::Http, "{e:?}");
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.code(), None);
    let snippet = e.body_snippet().expect("a snippet of the page");
    assert!(
        snippet.contains("<title>429 Too Many Requests</title>"),
        "{snippet}"
    );
    assert!(
        !snippet.contains('\n'),
        "whitespace is collapsed: {snippet:?}"
    );
    assert!(snippet.chars().count() <= 200);
    let shown = e.to_string();
    assert!(shown.starts_with("user.current: "), "{shown}");
    assert!(shown.contains("HTTP 429"), "{shown}");

    // A 502 with an empty body too.
    let e = user_current_error(ResponseTemplate::new(502)).await;
    assert_eq!(
        (e.kind(), e.status()),
        (ErrorKind::Http, Some(502)),
        "{e:?}"
    );
    // And a JSON body without an error code on an error status.
    let e = user_current_error(json_response(500, r#"{"result":null}"#)).await;
    assert_eq!(
        (e.kind(), e.status()),
        (ErrorKind::Http, Some(500)),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_empty_error_code_is_still_an_api_error() {
    let (client, _server) = answering(
        "crm.deal.get",
        json_response(400, r#"{"error":"","error_description":"Not found"}"#),
    )
    .await;
    let e = client
        .call_raw("crm.deal.get", json!({"id": 999999}))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert_eq!(e.code(), Some(""));
    assert_eq!(e.description(), Some("Not found"));
    assert_eq!(e.status(), Some(400));
    assert_eq!(
        e.to_string(),
        "crm.deal.get: (empty error code): Not found (HTTP 400)"
    );
}

#[tokio::test]
async fn a_result_of_the_wrong_shape_is_a_decode_error_with_path_and_snippet() {
    let (client, _server) = answering(
        "imbot.message.add",
        json_response(200, r#"{"result":"abc"}"#),
    )
    .await;
    let e = client
        .imbot()
        .message_add("hi")
        .dialog_id("chat42")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e:?}");
    assert_eq!(e.method_name(), Some("imbot.message.add"));
    assert_eq!(e.json_path(), Some("."));
    assert!(e.body_snippet().unwrap_or("").contains("abc"), "{e:?}");
    assert_eq!(e.code(), None);
    assert!(
        e.to_string()
            .starts_with("imbot.message.add: cannot decode the result at `.`"),
        "{e}"
    );

    // Nested: the path points at the field.
    let (client, _server) = answering(
        "user.current",
        json_response(200, r#"{"result":{"ID":"seventeen","NAME":"Alex"}}"#),
    )
    .await;
    let e = client.user().current().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e:?}");
    assert_eq!(e.json_path(), Some("ID"));
    assert!(
        e.body_snippet().unwrap_or("").contains("seventeen"),
        "{e:?}"
    );

    // A missing `result` for a method that needs one.
    let (client, _server) =
        answering("imbot.message.add", json_response(200, r#"{"time":{}}"#)).await;
    let e = client
        .imbot()
        .message_add("hi")
        .dialog_id("chat42")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e:?}");
}

#[tokio::test]
async fn an_unknown_error_code_is_an_api_error_not_a_decode_error() {
    for status in [200, 400, 418] {
        let (client, _server) = answering(
            "imbot.message.add",
            json_response(
                status,
                r#"{"error":"BRAND_NEW_ERROR_2031","error_description":"Something new","result":"not-a-number"}"#,
            ),
        )
        .await;
        let e = client
            .imbot()
            .message_add("hi")
            .dialog_id("chat42")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api, "{status}: {e:?}");
        assert_eq!(e.code(), Some("BRAND_NEW_ERROR_2031"));
        assert_eq!(e.description(), Some("Something new"));
        assert_eq!(e.status(), Some(status));
    }
}

#[tokio::test]
async fn a_rest_v3_error_object_is_an_api_error() {
    let (client, server) = answering(
        "main.eventlog.get",
        fixture_response("rest-v3-error-validation.400.json"),
    )
    .await;
    let e = client
        .call_raw("main.eventlog.get", json!({"select": ["id"]}))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api, "{e:?}");
    assert_eq!(
        e.code(),
        Some("BITRIX_REST_V3_EXCEPTION_VALIDATION_REQUESTVALIDATIONEXCEPTION")
    );
    assert_eq!(e.description(), Some("Error validating request object"));
    assert_eq!(e.status(), Some(400));
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn error_codes_keep_their_case_and_match_case_insensitively() {
    let e = user_current_error(json_response(
        403,
        r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the webhook token"}"#,
    ))
    .await;
    assert_eq!(e.kind(), ErrorKind::Api);
    assert_eq!(e.code(), Some("insufficient_scope"), "verbatim");
    assert!(e.is_code("INSUFFICIENT_SCOPE"));
    assert_eq!(e.status(), Some(403));
}
