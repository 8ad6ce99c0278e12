//! Typed results of the generated methods against real-shaped answers (the shared fixtures),
//! the tolerant decoding of PHP's `[]`, and the checks made before anything is sent.

mod common;

use bitrix24::types::{CrmItemListResult, Deal, TaskResult};
use bitrix24::{Access, Client, ErrorKind, Method, MethodMeta, Params};
use common::*;
use serde_json::json;

#[tokio::test]
#[allow(deprecated)] // crm.deal.list: Bitrix24 points to crm.item.list
async fn a_deal_page_decodes_into_typed_deals() {
    let (client, server) = answering(
        "crm.deal.list",
        fixture_response("list-response-crm-deal-list.200.json"),
    )
    .await;
    let deals: Vec<Deal> = client
        .crm()
        .deal_list()
        .select(["ID", "TITLE", "OPPORTUNITY"])
        .filter(json!({">OPPORTUNITY": 1000}))
        .order([("ID", "ASC")])
        .await
        .unwrap();
    assert_eq!(deals.len(), 50);
    assert_eq!(deals[0].opportunity, Some(65229.0), "sent as \"65229.00\"");
    assert!(deals.iter().all(|d| d.id > 0));
    let sent = body_json(&requests(&server).await[0]);
    assert_eq!(
        sent,
        json!({"select": ["ID", "TITLE", "OPPORTUNITY"], "filter": {">OPPORTUNITY": 1000},
               "order": {"ID": "ASC"}})
    );
}

#[tokio::test]
async fn a_crm_item_page_decodes_with_camel_case_fields() {
    let (client, server) = answering(
        "crm.item.list",
        fixture_response("list-response-crm-item-list-start-minus1.200.json"),
    )
    .await;
    let page: CrmItemListResult = client
        .crm()
        .item_list(1)
        .filter(json!({">id": 2000}))
        .start(-1)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.items[0].id, 2001);
    assert_eq!(page.items[0].title.as_deref(), Some("Lead #2001"));
    assert_eq!(page.items[0].stage_id.as_deref(), Some("NEW"));
    let sent = body_json(&requests(&server).await[0]);
    assert_eq!(
        sent,
        json!({"entityTypeId": 1, "filter": {">id": 2000}, "start": -1})
    );
    let model = <bitrix24::crm::CrmItemList as Method>::META.list.unwrap();
    assert_eq!(
        (model.items, model.id, model.fast_scan),
        ("items", "id", true)
    );
}

#[tokio::test]
async fn php_empty_arrays_read_as_nothing() {
    // tasks.task.get answers `[]` for a task that does not exist or is not visible.
    let (client, _s) = answering("tasks.task.get", json_response(200, r#"{"result":[]}"#)).await;
    let r: TaskResult = client.tasks().task_get().task_id(7).await.unwrap();
    assert!(r.task.is_none());

    // A nested struct sent as `[]` (PHP's empty array) is absent, not an error.
    let body = r#"{"result":{"task":{"id":"7","title":"Call back","group":[],"creator":[]}}}"#;
    let (client, _s) = answering("tasks.task.get", json_response(200, body)).await;
    let task = client
        .tasks()
        .task_get()
        .task_id(7)
        .await
        .unwrap()
        .task
        .unwrap();
    assert_eq!((task.id, task.title.as_deref()), (7, Some("Call back")));
    assert!(task.creator.is_none());
}

#[tokio::test]
#[allow(deprecated)]
async fn a_request_missing_a_conditional_requirement_is_refused_before_sending() {
    let (client, server) =
        answering("imbot.message.add", json_response(200, r#"{"result":1}"#)).await;
    // Neither DIALOG_ID nor FROM_USER_ID + TO_USER_ID.
    let e = client
        .imbot()
        .message_add("hi")
        .from_user_id(1)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");
    assert_eq!(
        e.to_string(),
        "imbot.message.add: invalid input: needs DIALOG_ID, or FROM_USER_ID with TO_USER_ID (TO_USER_ID is not set)"
    );
    assert!(requests(&server).await.is_empty(), "nothing was sent");

    // Either alternative goes out.
    client
        .imbot()
        .message_add("hi")
        .dialog_id("chat1")
        .await
        .unwrap();
    client
        .imbot()
        .message_add("hi")
        .from_user_id(1)
        .to_user_id(2)
        .await
        .unwrap();
    assert_eq!(requests(&server).await.len(), 2);

    // im.message.add needs text or an attachment.
    let e = client.im().message_add("chat1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "im.message.add: invalid input: needs MESSAGE, or ATTACH"
    );
}

/// A method of your own, as `bitrix24-codegen` would generate it or as you write it by hand.
struct FutureMethod(Params);

impl Method for FutureMethod {
    const META: &'static MethodMeta =
        &MethodMeta::new("tasks.task.get", Access::Read).api(bitrix24::ApiVersion::V3);
    type Output = serde_json::Value;
    fn wire_params(&self) -> &Params {
        &self.0
    }
}

#[tokio::test]
async fn rest_v3_methods_are_refused_until_supported() {
    let (client, server) = answering("tasks.task.get", json_response(200, r#"{"result":1}"#)).await;
    let e = client.call(&FutureMethod(Params::new())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(requests(&server).await.is_empty());
}

#[test]
fn typed_futures_are_send_and_static() {
    fn check<F: std::future::Future + Send + 'static>(_: F) {}
    let client = Client::webhook("https://acme.bitrix24.com/rest/1/k3y/").unwrap();
    check(std::future::IntoFuture::into_future(
        client.user().current(),
    ));
    check(client.call(&bitrix24::user::UserCurrent::new()));
}
