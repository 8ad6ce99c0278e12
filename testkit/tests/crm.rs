//! The seeded store: classic CRM lists and CRUD, `crm.item.*`, `tasks.task.*`, big lists.

mod common;

use std::time::{Duration, Instant};

use bitrix24::Client;
use bitrix24_testkit::FakePortal;
use common::*;
use serde_json::json;

#[tokio::test]
async fn deal_list_page_matches_the_fixture() {
    let portal = FakePortal::start().await;
    let fixture = fixture("list-response-crm-deal-list.200.json");
    let (status, body) = post_json(
        &format!("{}crm.deal.list", portal.webhook_url(1)),
        json!({"select": ["ID", "TITLE", "STAGE_ID", "OPPORTUNITY", "CURRENCY_ID", "ASSIGNED_BY_ID", "DATE_CREATE", "CLOSED"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_covers("", &body, &fixture);
    assert_eq!(body["result"].as_array().unwrap().len(), 50);
    assert_eq!(
        (body["next"].clone(), body["total"].clone()),
        (json!(50), json!(137))
    );
    // Last page: no next.
    let (_, body) = post_json(
        &format!("{}crm.deal.list", portal.webhook_url(1)),
        json!({"start": 100}),
    )
    .await;
    assert_eq!(body["result"].as_array().unwrap().len(), 37);
    assert!(body.get("next").is_none());
}

#[tokio::test]
async fn item_list_with_start_minus_one_matches_the_fixture() {
    let portal = FakePortal::start().await;
    let (status, body) = post_json(
        &format!("{}crm.item.list", portal.webhook_url(1)),
        json!({"entityTypeId": 1, "select": ["id", "title", "stageId", "createdTime"], "filter": {">id": 2}, "order": {"id": "ASC"}, "start": -1}),
    )
    .await;
    assert_eq!(status, 200);
    assert_covers(
        "",
        &body,
        &fixture("list-response-crm-item-list-start-minus1.200.json"),
    );
    assert_eq!(body["total"], 0);
    assert_eq!(body["result"]["items"][0]["id"], 3);
    assert_eq!(body["result"]["items"].as_array().unwrap().len(), 50);
}

#[allow(deprecated)] // crm.contact.list is the classic list the fake portal still serves
#[tokio::test]
async fn filters_order_select_and_crud() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let (_, body) = post_json(&format!("{url}crm.deal.list"), json!({"filter": {"STAGE_ID": "NEW", ">=OPPORTUNITY": 50000, "!ASSIGNED_BY_ID": 2, "%TITLE": "#1"}, "order": {"OPPORTUNITY": "DESC"}, "select": ["ID", "STAGE_ID", "OPPORTUNITY", "ASSIGNED_BY_ID"]})).await;
    let rows = body["result"].as_array().unwrap();
    assert!(!rows.is_empty());
    let mut prev = f64::MAX;
    for r in rows {
        let o: f64 = r["OPPORTUNITY"].as_str().unwrap().parse().unwrap();
        assert!(o >= 50000.0 && o <= prev);
        prev = o;
        assert_eq!(r["STAGE_ID"], "NEW");
        assert_ne!(r["ASSIGNED_BY_ID"], "2");
    }
    assert_eq!(body["total"].as_u64().unwrap(), rows.len() as u64);

    let (_, added) = post_json(&format!("{url}crm.contact.add"), json!({"fields": {"NAME": "Zed", "LAST_NAME": "Probe", "EMAIL": [{"VALUE": "zed@example.com", "VALUE_TYPE": "WORK"}]}})).await;
    let id = added["result"].as_u64().unwrap();
    assert_eq!(id, 101);
    let (_, got) = post_json(&format!("{url}crm.contact.get"), json!({"id": id})).await;
    assert_eq!(got["result"]["NAME"], "Zed");
    assert_eq!(got["result"]["EMAIL"][0]["VALUE"], "zed@example.com");
    let (_, upd) = post_json(
        &format!("{url}crm.contact.update"),
        json!({"id": id, "fields": {"NAME": "Zoe"}}),
    )
    .await;
    assert_eq!(upd["result"], true);
    let (_, found) = post_json(
        &format!("{url}crm.contact.list"),
        json!({"filter": {"%NAME": "zoe"}, "select": ["ID", "NAME"]}),
    )
    .await;
    assert_eq!(found["result"], json!([{"ID": "101", "NAME": "Zoe"}]));
    let (_, del) = post_json(&format!("{url}crm.contact.delete"), json!({"id": id})).await;
    assert_eq!(del["result"], true);
    let (status, gone) = post_json(&format!("{url}crm.contact.get"), json!({"id": id})).await;
    assert_eq!(
        (
            status,
            gone["error"].clone(),
            gone["error_description"].clone()
        ),
        (400, json!(""), json!("Not found"))
    );
    // The typed client reads the same store.
    let client = Client::webhook(url).unwrap();
    let contacts = client.crm().contact_list().await.unwrap();
    assert_eq!(contacts.len(), 50);
    assert_eq!(contacts[0].id, 1);
}

#[tokio::test]
async fn crm_item_crud_is_camel_case_with_numbers() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let (_, added) = post_json(&format!("{url}crm.item.add"), json!({"entityTypeId": 2, "fields": {"title": "Big one", "opportunity": 1234.5, "stageId": "EXECUTING"}})).await;
    let item = &added["result"]["item"];
    assert_eq!(item["title"], "Big one");
    assert_eq!(item["opportunity"], 1234.5);
    assert!(item["id"].is_u64());
    let id = item["id"].as_u64().unwrap();
    let (_, got) = post_json(
        &format!("{url}crm.item.get"),
        json!({"entityTypeId": 2, "id": id}),
    )
    .await;
    assert_eq!(got["result"]["item"]["stageId"], "EXECUTING");
    let (_, upd) = post_json(
        &format!("{url}crm.item.update"),
        json!({"entityTypeId": 2, "id": id, "fields": {"title": "Bigger"}}),
    )
    .await;
    assert_eq!(upd["result"]["item"]["title"], "Bigger");
    let (_, list) = post_json(
        &format!("{url}crm.item.list"),
        json!({"entityTypeId": 2, "filter": {"=title": "Bigger"}}),
    )
    .await;
    assert_eq!(list["result"]["items"][0]["id"], id);
    assert_eq!(list["total"], 1);
    let (status, del) = post_json(
        &format!("{url}crm.item.delete"),
        json!({"entityTypeId": 2, "id": id}),
    )
    .await;
    assert_eq!((status, del["result"].clone()), (200, json!(null)));
}

#[tokio::test]
async fn tasks_list_wraps_in_result_tasks() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    let (_, body) = post_json(&format!("{url}tasks.task.list"), json!({"filter": {"RESPONSIBLE_ID": 1}, "select": ["ID", "TITLE", "RESPONSIBLE_ID"], "order": {"ID": "DESC"}})).await;
    let tasks = body["result"]["tasks"].as_array().unwrap();
    assert!(!tasks.is_empty());
    assert!(tasks
        .iter()
        .all(|t| t["responsibleId"] == "1" && t["id"].is_string()));
    let (_, added) = post_json(
        &format!("{url}tasks.task.add"),
        json!({"fields": {"TITLE": "Write tests", "RESPONSIBLE_ID": 2}}),
    )
    .await;
    assert_eq!(added["result"]["task"]["title"], "Write tests");
    assert_eq!(added["result"]["task"]["id"], "61");
}

#[tokio::test]
async fn a_million_contacts_scan_by_id_cursor_fast_and_offset_paging_costs_more() {
    let portal = FakePortal::builder()
        .contacts(1_000_000)
        .rate_limit_off()
        .start()
        .await;
    let url = format!("{}crm.contact.list", portal.webhook_url(1));
    let t = Instant::now();
    let (_, first) = post_json(&url, json!({"select": ["ID"], "start": 0})).await;
    assert_eq!(first["total"], 1_000_000);
    // Cursor: >ID, order by ID, start=-1 -> cheap, no total/next.
    let (_, cursor) = post_json(&url, json!({"select": ["ID", "NAME"], "filter": {">ID": 999_000}, "order": {"ID": "ASC"}, "start": -1})).await;
    assert_eq!(cursor["result"][0]["ID"], "999001");
    assert_eq!(cursor["total"], 0);
    assert!(cursor.get("next").is_none());
    // Offset: the same page by start=999000 costs far more simulated time.
    let (_, offset) = post_json(&url, json!({"select": ["ID"], "start": 999_000})).await;
    assert_eq!(offset["result"][0]["ID"], "999001");
    let cost = |v: &serde_json::Value| v["time"]["processing"].as_f64().unwrap();
    assert!(
        cost(&offset) > 10.0 * cost(&cursor),
        "offset {} vs cursor {}",
        cost(&offset),
        cost(&cursor)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn users_and_departments() {
    let portal = FakePortal::builder().users(60).start().await;
    let url = portal.webhook_url(1);
    let (_, users) = get(&format!("{url}user.get")).await;
    assert_eq!(users["total"], 60);
    assert_eq!(users["next"], 50);
    let (_, one) = get(&format!("{url}user.get?ID=7")).await;
    assert_eq!(one["result"][0]["ID"], "7");
    let (_, deps) = get(&format!("{url}department.get")).await;
    assert_eq!(deps["result"][0]["NAME"], "Company");
}

#[tokio::test]
#[allow(deprecated)] // crm.deal.* is deprecated upstream; it is what the fake serves here
async fn list_order_sorts_by_its_keys_in_the_order_sent() {
    let portal = FakePortal::start().await;
    let url = format!("{}crm.deal.list", portal.webhook_url(1));
    let page = |text: &'static str| {
        let url = url.clone();
        async move {
            let (status, body, raw) = post_text(&url, "application/json", text).await;
            assert_eq!(status, 200, "{raw}");
            body["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["STAGE_ID"].as_str().unwrap().to_owned(),
                        r["ID"].as_str().unwrap().parse::<u64>().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // STAGE_ID first: by stage, then by id descending within a stage.
    let by_stage =
        page(r#"{"order": {"STAGE_ID": "ASC", "ID": "DESC"}, "select": ["ID", "STAGE_ID"]}"#).await;
    let mut want = by_stage.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    assert_eq!(by_stage, want);
    // ID first: the stage never decides.
    let by_id =
        page(r#"{"order": {"ID": "DESC", "STAGE_ID": "ASC"}, "select": ["ID", "STAGE_ID"]}"#).await;
    let ids: Vec<u64> = by_id.iter().map(|r| r.1).collect();
    assert_eq!(ids, (88..=137).rev().collect::<Vec<u64>>());
    assert_ne!(by_stage, by_id);

    // End to end: the client sends `order` in the order given, and the fake honours it.
    let client = Client::webhook(portal.webhook_url(1)).unwrap();
    let deals = client
        .crm()
        .deal_list()
        .order([("STAGE_ID", "ASC"), ("ID", "DESC")])
        .select(["ID", "STAGE_ID"])
        .await
        .unwrap();
    let got: Vec<u64> = deals.iter().map(|d| d.id).collect();
    let want: Vec<u64> = by_stage.iter().map(|r| r.1).collect();
    assert_eq!(got, want);
}
