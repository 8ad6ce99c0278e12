//! Regressions found by the review of the generated API: credentials printed by `Debug`,
//! tolerant decoding that changed values, checks made before sending.
#![allow(deprecated)] // the classic imbot.* methods are deprecated by Bitrix24

mod common;

use bitrix24::imbot::{ImbotMessageAdd, ImbotV2BotRegister, ImbotV2ChatMessageSend};
use bitrix24::types::{BotV2Properties, BotV2RegisterFields};

const SECRET: &str = "s3cr3t-credential-value";

/// Webhook callers authenticate bot calls with `CLIENT_ID` (classic) or `botToken` (2.0):
/// whoever holds it with the webhook acts as the bot, so a request's `Debug` (logs, panics,
/// `tracing` fields) must not show it.
#[test]
fn bot_credentials_are_not_printed_by_debug() {
    let shown = [
        format!("{:?}", ImbotMessageAdd::new("hi").client_id(SECRET)),
        format!(
            "{:?}",
            ImbotV2ChatMessageSend::new(1, "chat1").bot_token(SECRET)
        ),
        format!(
            "{:?}",
            ImbotV2BotRegister::new(
                BotV2RegisterFields::new("echo", BotV2Properties::new()).bot_token(SECRET)
            )
        ),
        format!(
            "{:?}",
            bitrix24::im::ImNotifySystemAdd::new(1, "hi").client_id(SECRET)
        ),
    ];
    for s in shown {
        assert!(!s.contains(SECRET), "{s}");
        assert!(s.contains("[redacted]"), "{s}");
    }
}

/// PHP sends `false` for "no value" (`"idle": false`, `"last_activity_date": false`,
/// `"phones": false` in `im.*` users). An optional string must read it as `None`, not as the
/// text `"N"`, and an optional struct as `None`, not as an empty struct.
#[test]
fn false_is_no_value_for_optional_strings_and_structs() {
    use bitrix24::types::ImDepartmentColleaguesListItem;
    use bitrix24::FromWire;
    let item = ImDepartmentColleaguesListItem::from_wire(&serde_json::json!({
        "id": 7, "name": "Anna", "idle": false, "last_activity_date": false,
        "status": "online", "phones": false
    }))
    .unwrap();
    assert_eq!(item.idle, None);
    assert_eq!(item.last_activity_date, None);
    assert_eq!(item.phones, None);
    assert_eq!(item.status.as_deref(), Some("online"));
}

/// A result that does not decode is shown as a body snippet in the error. The answer may
/// carry credentials of its own (SIP passwords of `voximplant.sip.get`, a bot's token): the
/// snippet must not show them, whatever the client knows about its own token.
#[tokio::test]
async fn decode_error_snippets_hide_credentials_of_the_answer() {
    use bitrix24::{Access, Method, MethodMeta, Params};
    use common::*;
    struct SipGet(Params);
    impl Method for SipGet {
        const META: &'static MethodMeta = &MethodMeta::new("voximplant.sip.get", Access::Read);
        type Output = Vec<u64>;
        fn wire_params(&self) -> &Params {
            &self.0
        }
    }
    let server = wiremock::MockServer::start().await;
    mount_post(
        &server,
        "/rest/1/k3y/voximplant.sip.get",
        json_response(
            200,
            format!(r#"{{"result":[{{"ID":"5","PASSWORD":"{SECRET}","botToken":"{SECRET}"}}]}}"#),
        ),
    )
    .await;
    mount_catch_all(&server).await;
    let client = bitrix24::Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    let e = client.call(&SipGet(Params::new())).await.unwrap_err();
    assert_eq!(e.kind(), bitrix24::ErrorKind::Decode, "{e:?}");
    assert!(e.body_snippet().unwrap().contains("PASSWORD"), "{e:?}");
    assert_no_secrets(&e, &[SECRET]);
}

/// A credential set through the untyped escape hatch (a method the spec gives no such param)
/// is not printed either: `Debug` hides values of parameters named like credentials.
#[test]
fn credentials_set_by_name_are_not_printed() {
    let req = bitrix24::user::UserCurrent::new()
        .extra("botToken", SECRET)
        .extra("password", SECRET);
    let shown = format!("{req:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let p = bitrix24::Params::from_value(serde_json::json!({"CLIENT_ID": SECRET})).unwrap();
    assert!(!format!("{p:?}").contains(SECRET));
}

/// `result` of a method, decoded as the type its request declares.
fn decode_as<M: bitrix24::Method>(
    result: serde_json::Value,
) -> Result<M::Output, bitrix24::WireError> {
    <M::Output as bitrix24::FromWire>::from_wire(&result)
}

/// The response examples of the docs pages, decoded as the generated result types: where the
/// docs table contradicted the example (a missing wrapper key, a misspelt key, a wrong scalar
/// type), the result either failed every call or left the typed fields empty.
#[test]
fn docs_response_examples_decode_into_typed_results() {
    use bitrix24::crm::{
        CrmCategoryAdd, CrmItemProductrowSet, CrmTimelineLogmessageAdd, CrmVatUpdate,
    };
    use bitrix24::tasks::{TasksTaskCountersGet, TasksTaskHistoryList};
    use serde_json::json;

    // crm.vat.update: "contains the identifier of the updated rate", `"result": 13`.
    assert!(decode_as::<CrmVatUpdate>(json!(13)).is_ok());

    let added = decode_as::<CrmTimelineLogmessageAdd>(json!({"logMessage": {
        "id": 1, "created": "2024-04-03T10:26:32+02:00", "authorId": 1, "title": "Test title",
        "text": "Test note", "iconCode": "info"}}))
    .unwrap();
    let message = added.log_message.expect("the wrapped object is typed");
    assert_eq!(
        (message.id, message.text.as_deref()),
        (Some(1), Some("Test note"))
    );

    let category = decode_as::<CrmCategoryAdd>(json!({"category": {
        "id": 5, "name": "New Default Funnel", "sort": 50, "entityTypeId": 1152, "isDefault": "Y"}}))
    .unwrap();
    assert_eq!(category.category.unwrap().id, Some(5));

    let rows = decode_as::<CrmItemProductrowSet>(json!({"productRows": [
        {"id": 17654, "ownerId": 13143, "ownerType": "D", "productId": 9621, "price": 99999.99}]}))
    .unwrap();
    assert_eq!(
        rows.product_rows.map(|r| r.len()),
        Some(1),
        "{:?}",
        rows.extra
    );

    let history = decode_as::<TasksTaskHistoryList>(json!({"list": [{
        "id": 16359, "createdDate": "2025-09-25T14:09:45+02:00", "field": "NEW",
        "value": {"from": null, "to": null}, "user": {"id": 503, "name": "Maria"}}]}))
    .unwrap();
    assert_eq!(history.list.unwrap()[0].field_value.as_deref(), Some("NEW"));

    let counters = decode_as::<TasksTaskCountersGet>(json!({
        "expired": {"counter": 1, "code": 6291456}, "new_comments": {"counter": 7, "code": 12582912}}))
    .unwrap();
    assert_eq!(counters["new_comments"].counter, Some(7));
}

/// Results typed `list<json>` whose answers are objects decoded as the object's *values*
/// (`{"badges": [..]}` read as a one-element list): the answer's shape comes from the page's
/// response example.
#[test]
fn object_answers_are_not_read_as_lists() {
    use bitrix24::crm::{CrmActivityBadgeList, CrmDocumentgeneratorTemplateList};
    use bitrix24::Method;
    let badges = decode_as::<CrmActivityBadgeList>(serde_json::json!({
        "badges": [{"code": "missedCall", "title": "Call Status", "value": "Missed", "type": "failure"}]
    }))
    .unwrap();
    assert_eq!(badges["badges"][0]["code"], "missedCall");
    let list = <CrmDocumentgeneratorTemplateList as Method>::META
        .list
        .unwrap();
    assert_eq!(
        list.items, "templates",
        "`{{\"templates\": {{\"39\": {{..}}}}}}`"
    );
}

/// JSON has no NaN: `serde_json` writes a NaN or infinite float as `null`, which on an update
/// clears the field. A request holding one is refused before anything is sent.
#[tokio::test]
async fn a_nan_is_refused_not_sent_as_null() {
    use bitrix24::types::CrmItemUpdateFields;
    use common::*;
    let server = wiremock::MockServer::start().await;
    mount_catch_all(&server).await;
    let client = bitrix24::Client::webhook(format!("{}/rest/1/k3y/", server.uri())).unwrap();
    let e = client
        .crm()
        .item_update(2, 7, CrmItemUpdateFields::new().opportunity(f64::NAN))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), bitrix24::ErrorKind::InvalidInput, "{e:?}");
    assert!(e.to_string().contains("fields"), "{e}");
    assert!(requests(&server).await.is_empty(), "nothing was sent");
}

/// The client sends `auth` itself. A request of one's own (`Params::from_value`) or the
/// `.extra(..)` escape hatch holding an `auth` key must not add a second `auth` to the body
/// (PHP keeps the last one: the call would run with the caller's value), as `call_raw`
/// already makes sure.
#[tokio::test]
async fn a_params_auth_key_is_not_sent_next_to_the_clients() {
    use common::*;
    let api = wiremock::MockServer::start().await;
    mount_post(&api, "/rest/user.current", json_response(200, USER_OK)).await;
    mount_catch_all(&api).await;
    let tokens = bitrix24::Tokens::new(OLD_ACCESS, OLD_REFRESH, rest_endpoint(&api));
    let client = bitrix24::Client::oauth(app(), tokens).unwrap();
    client
        .user()
        .current()
        .extra("auth", "forged-token-value")
        .await
        .unwrap();
    let sent = requests(&api).await;
    let body = String::from_utf8_lossy(&sent[0].body).into_owned();
    assert_eq!(body.matches("\"auth\"").count(), 1, "{body}");
    assert_eq!(body_json(&sent[0])["auth"], OLD_ACCESS);
}
