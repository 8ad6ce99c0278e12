//! List methods as a client's list streams see them: wrappers and id names per method,
//! offset pages following `next`, fast scans (`order ID`, `>ID`, `start=-1`), the cost of
//! each, unknown fields refused, and the quirks a test can switch on.

mod common;

use std::time::Duration;

use bitrix24_testkit::FakePortal;
use common::*;
use serde_json::{json, Value};

/// How one list method wraps its rows and names its id.
struct Shape {
    method: &'static str,
    /// Where the rows are: `""` for a bare array, else `result.<key>`.
    items: &'static str,
    /// The id key of a row.
    id: &'static str,
    /// The id field in `filter` and `order`.
    filter_id: &'static str,
    /// Whether a row's id is a JSON number (else a string).
    numeric_id: bool,
    /// Rows the default portal has.
    rows: u64,
}

const SHAPES: &[Shape] = &[
    Shape {
        method: "crm.contact.list",
        items: "",
        id: "ID",
        filter_id: "ID",
        numeric_id: false,
        rows: 100,
    },
    Shape {
        method: "crm.deal.list",
        items: "",
        id: "ID",
        filter_id: "ID",
        numeric_id: false,
        rows: 137,
    },
    Shape {
        method: "crm.lead.list",
        items: "",
        id: "ID",
        filter_id: "ID",
        numeric_id: false,
        rows: 412,
    },
    Shape {
        method: "crm.item.list",
        items: "items",
        id: "id",
        filter_id: "id",
        numeric_id: true,
        rows: 412,
    },
    Shape {
        method: "tasks.task.list",
        items: "tasks",
        id: "id",
        filter_id: "ID",
        numeric_id: false,
        rows: 60,
    },
];

impl Shape {
    fn params(&self, extra: Value) -> Value {
        let mut p = json!({});
        // crm.item.list of leads (entityTypeId 1).
        if self.method == "crm.item.list" {
            p["entityTypeId"] = json!(1);
        }
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    fn rows<'a>(&self, body: &'a Value) -> &'a Vec<Value> {
        let r = &body["result"];
        let rows = if self.items.is_empty() {
            r
        } else {
            &r[self.items]
        };
        rows.as_array()
            .unwrap_or_else(|| panic!("{}: no rows in {body}", self.method))
    }

    fn ids(&self, body: &Value) -> Vec<u64> {
        self.rows(body)
            .iter()
            .map(|row| {
                let id = &row[self.id];
                if self.numeric_id {
                    id.as_u64()
                        .unwrap_or_else(|| panic!("{}: {id} not a number", self.method))
                } else {
                    id.as_str()
                        .unwrap_or_else(|| panic!("{}: {id} not a string", self.method))
                        .parse()
                        .unwrap()
                }
            })
            .collect()
    }
}

#[tokio::test]
async fn every_list_scans_alike_by_offset_and_by_id_cursor() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    for s in SHAPES {
        let url = format!("{}{}", portal.webhook_url(1), s.method);
        let order = json!({ s.filter_id: "ASC" });
        // Offset mode: follow `next` until it is absent.
        let (mut offset_ids, mut start, mut pages) = (Vec::new(), Some(0u64), 0);
        while let Some(at) = start {
            let (status, body) = post_json(
                &url,
                s.params(json!({"order": order, "select": [s.filter_id], "start": at})),
            )
            .await;
            assert_eq!(status, 200, "{}: {body}", s.method);
            assert_eq!(body["total"], s.rows, "{}", s.method);
            let ids = s.ids(&body);
            pages += 1;
            start = body.get("next").map(|n| n.as_u64().unwrap());
            if let Some(n) = start {
                assert_eq!((ids.len(), n), (50, at + 50), "{}", s.method);
            } else {
                assert!(!ids.is_empty() && ids.len() <= 50, "{}", s.method);
            }
            offset_ids.extend(ids);
        }
        assert_eq!(pages, s.rows.div_ceil(50), "{}", s.method);
        // Fast mode: `>id` = last id, start=-1, until a short page; total 0, no next.
        let (mut fast_ids, mut last) = (Vec::new(), 0u64);
        loop {
            let (status, body) = post_json(
                &url,
                s.params(json!({"order": order, "filter": {format!(">{}", s.filter_id): last}, "select": [s.filter_id], "start": -1})),
            )
            .await;
            assert_eq!(status, 200, "{}: {body}", s.method);
            assert_eq!(body["total"], 0, "{}", s.method);
            assert!(body.get("next").is_none(), "{}: {body}", s.method);
            let ids = s.ids(&body);
            let n = ids.len();
            if let Some(l) = ids.last() {
                last = *l;
            }
            fast_ids.extend(ids);
            if n < 50 {
                break;
            }
        }
        let want: Vec<u64> = (1..=s.rows).collect();
        assert_eq!(offset_ids, want, "{} offset", s.method);
        assert_eq!(fast_ids, want, "{} fast", s.method);
    }
}

#[tokio::test]
async fn wrappers_and_id_names_follow_the_docs() {
    let portal = FakePortal::start().await;
    let url = portal.webhook_url(1);
    // crm.item.list: result.items, camelCase, numeric `id`.
    let (_, body) = post_json(
        &format!("{url}crm.item.list"),
        json!({"entityTypeId": 2, "filter": {">=id": 130}, "order": {"id": "DESC"}}),
    )
    .await;
    let items = body["result"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 8);
    assert_eq!(items[0]["id"], 137);
    assert!(items[0]["stageId"].is_string() && items[0]["assignedById"].is_u64());
    assert!(items[0].get("ID").is_none() && items[0].get("STAGE_ID").is_none());
    // tasks.task.list: result.tasks, `id` strings out, `ID` in filter and order; newest first
    // without an order.
    let (_, body) = post_json(
        &format!("{url}tasks.task.list"),
        json!({"select": ["ID", "TITLE"]}),
    )
    .await;
    let tasks = body["result"]["tasks"].as_array().unwrap();
    assert_eq!(tasks[0], json!({"id": "60", "title": "Task #60"}));
    assert_eq!(
        (body["total"].clone(), body["next"].clone()),
        (json!(60), json!(50))
    );
    let (_, body) = post_json(
        &format!("{url}tasks.task.list"),
        json!({"filter": {"<ID": 3}, "order": {"ID": "ASC"}, "select": ["ID"]}),
    )
    .await;
    assert_eq!(body["result"]["tasks"], json!([{"id": "1"}, {"id": "2"}]));
    // crm.deal.list / crm.contact.list: bare arrays, ID strings.
    for m in ["crm.deal.list", "crm.contact.list"] {
        let (_, body) =
            post_json(&format!("{url}{m}"), json!({"select": ["ID"], "start": 50})).await;
        assert_eq!(body["result"][0], json!({"ID": "51"}), "{m}");
    }
    // 100 contacts: the second page is the last, with no next.
    let (_, body) = post_json(&format!("{url}crm.contact.list"), json!({"start": 50})).await;
    assert_eq!(body["result"].as_array().unwrap().len(), 50);
    assert!(body.get("next").is_none(), "{body}");
}

#[tokio::test]
async fn user_get_reads_filter_upper_case_and_sort_order_strings() {
    let portal = FakePortal::builder().users(70).start().await;
    let url = format!("{}user.get", portal.webhook_url(1));
    let ids = |body: &Value| -> Vec<u64> {
        body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["ID"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (_, body) = post_json(
        &url,
        json!({"FILTER": {">ID": 60}, "sort": "ID", "order": "DESC"}),
    )
    .await;
    assert_eq!(ids(&body), (61..=70).rev().collect::<Vec<_>>());
    assert_eq!(body["total"], 10);
    // Upper-case SORT/ORDER as in the docs' example, and a fast scan.
    let (_, body) = post_json(
        &url,
        json!({"FILTER": {">ID": 20}, "SORT": "ID", "ORDER": "ASC", "start": -1}),
    )
    .await;
    assert_eq!(ids(&body), (21..=70).collect::<Vec<_>>());
    assert_eq!(body["total"], 0);
    assert!(body.get("next").is_none());
    // Offset pages: 70 users, pages of 50.
    let (_, body) = post_json(&url, json!({"start": 0})).await;
    assert_eq!(
        (body["total"].clone(), body["next"].clone()),
        (json!(70), json!(50))
    );
    let (_, body) = post_json(&url, json!({"start": 50})).await;
    assert_eq!(ids(&body).len(), 20);
    assert!(body.get("next").is_none());
    // NAME_SEARCH: the quick search over names and e-mail.
    let (_, body) = post_json(&url, json!({"FILTER": {"NAME_SEARCH": "alex example"}})).await;
    assert_eq!(ids(&body)[0], 1);
    assert!(body["result"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["NAME"] == "Alex"));
}

#[tokio::test]
async fn department_get_sorts_by_lower_case_sort_and_filters_by_upper_case_sort() {
    let portal = FakePortal::builder().departments(6).start().await;
    let url = format!("{}department.get", portal.webhook_url(1));
    let (_, body) = post_json(&url, json!({"sort": "NAME", "order": "DESC"})).await;
    let names: Vec<&str> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["NAME"].as_str().unwrap())
        .collect();
    let mut want = names.clone();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, want);
    // `SORT` in upper case is the SORT field (500 for every seeded department).
    let (_, body) = post_json(&url, json!({"SORT": 500, ">ID": 4})).await;
    assert_eq!(body["total"], 2, "{body}");
    let (_, body) = post_json(&url, json!({"SORT": 1})).await;
    assert_eq!(body["total"], 0, "{body}");
}

/// `(status, error, error_description)` of a call.
async fn error_of(url: &str, params: Value) -> (u16, String, String) {
    let (status, body) = post_json(url, params).await;
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    (status, text("error"), text("error_description"))
}

#[tokio::test]
async fn unknown_filter_and_order_fields_are_refused() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let hook = portal.webhook_url(1);
    let cases: &[(&str, Value)] = &[
        ("crm.contact.list", json!({})),
        ("crm.deal.list", json!({})),
        ("crm.lead.list", json!({})),
        ("crm.company.list", json!({})),
        ("crm.item.list", json!({"entityTypeId": 2})),
        ("tasks.task.list", json!({})),
    ];
    for (method, base) in cases {
        let url = format!("{hook}{method}");
        for prefix in [
            "", ">=", ">", "<=", "<", "=", "!", "@", "!@", "%", "=%", "%=", "!%", "!=", "!=%",
        ] {
            let mut p = base.clone();
            p["filter"] = json!({ format!("{prefix}NO_SUCH_FIELD"): "1" });
            assert_eq!(
                error_of(&url, p).await,
                (
                    400,
                    "INVALID_ARG_VALUE".into(),
                    "Invalid filter: field 'NO_SUCH_FIELD' is not allowed in filter".into()
                ),
                "{method} {prefix}"
            );
        }
        // A known field, whatever its case of prefix, passes.
        let mut p = base.clone();
        p["filter"] = json!({">=ID": 1, "!ID": 0});
        assert_eq!(post_json(&url, p).await.0, 200, "{method}");
    }
    // Fields a real portal has that the fake does not store filter as empty.
    let (status, body) = post_json(
        &format!("{hook}crm.deal.list"),
        json!({"filter": {"UTM_SOURCE": ""}, "select": ["ID"]}),
    )
    .await;
    assert_eq!((status, body["total"].clone()), (200, json!(137)));
    // crm.item.list: camelCase names, and the documented order errors.
    let item = format!("{hook}crm.item.list");
    assert_eq!(
        error_of(
            &item,
            json!({"entityTypeId": 2, "filter": {"noSuchField": 1}})
        )
        .await
        .2,
        "Invalid filter: field 'noSuchField' is not allowed in filter"
    );
    assert_eq!(
        error_of(
            &item,
            json!({"entityTypeId": 2, "order": {"noSuchField": "ASC"}})
        )
        .await,
        (
            400,
            "INVALID_ARG_VALUE".into(),
            "Invalid order: field 'noSuchField' is not allowed in order".into()
        )
    );
    assert_eq!(
        error_of(&item, json!({"entityTypeId": 2, "order": {"id": "UP"}}))
            .await
            .2,
        "Invalid order: allowed sort directions are ASC, DESC. But got 'UP' for field 'id'"
    );
    // Classic lists refuse an unknown order field too; tasks answer their documented error.
    assert_eq!(
        error_of(
            &format!("{hook}crm.deal.list"),
            json!({"order": {"NOPE": "ASC"}})
        )
        .await
        .1,
        "INVALID_ARG_VALUE"
    );
    assert_eq!(
        error_of(
            &format!("{hook}tasks.task.list"),
            json!({"order": {"NOPE": "ASC"}})
        )
        .await,
        (
            400,
            "0".into(),
            "Invalid sorting key (internal error)".into()
        )
    );
    // user.get: every FILTER key must name a user field; department.get: every filter key.
    assert_eq!(
        error_of(&format!("{hook}user.get"), json!({"FILTER": {">NOPE": 1}})).await,
        (
            400,
            "INVALID_ARG_VALUE".into(),
            "Invalid filter: field 'NOPE' is not allowed in filter".into()
        )
    );
    assert_eq!(
        error_of(&format!("{hook}department.get"), json!({"!NOPE": 1}))
            .await
            .2,
        "Invalid filter: field 'NOPE' is not allowed in filter"
    );
    assert_eq!(
        error_of(&format!("{hook}user.get"), json!({"sort": "NOPE"}))
            .await
            .1,
        "INVALID_ARG_VALUE"
    );
    // Inside a batch: the command's error.
    let (_, body) = post_json(
        &format!("{hook}batch"),
        json!({"cmd": {"bad": "crm.contact.list?filter[>NOPE]=1", "good": "crm.contact.list?filter[>ID]=99"}}),
    )
    .await;
    assert_eq!(
        body["result"]["result_error"]["bad"]["error"],
        "INVALID_ARG_VALUE"
    );
    assert_eq!(body["result"]["result"]["good"][0]["ID"], "100");
}

/// `time.processing` of a call, seconds.
async fn processing(url: &str, params: Value) -> f64 {
    let (status, body) = post_json(url, params).await;
    assert_eq!(status, 200, "{body}");
    body["time"]["processing"].as_f64().unwrap()
}

#[tokio::test]
async fn an_offset_page_that_counts_costs_more_than_a_start_minus_one_page() {
    // The defaults: 5 ms per call, 20 µs per row read, a COUNT of 250 rows' worth plus 2 µs
    // per row counted.
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let url = format!("{}crm.contact.list", portal.webhook_url(1));
    let close = |got: f64, want: f64| (got - want).abs() < 1e-6;
    let fast = processing(
        &url,
        json!({"order": {"ID": "ASC"}, "filter": {">ID": 0}, "start": -1}),
    )
    .await;
    assert!(close(fast, 0.005 + 50.0 * 20e-6), "{fast}");
    let first = processing(&url, json!({"start": 0})).await;
    assert!(
        close(first, 0.005 + 50.0 * 20e-6 + (250.0 + 10.0) * 20e-6),
        "{first}"
    );
    let second = processing(&url, json!({"start": 50})).await;
    assert!(
        close(second, 0.005 + 100.0 * 20e-6 + (250.0 + 10.0) * 20e-6),
        "{second}"
    );
    assert!(first > 1.8 * fast && second > first);
    // Deterministic: the same page costs the same again.
    assert_eq!(processing(&url, json!({"start": 50})).await, second);
    // A fast page deep in a million costs what the first one does; the offset page there
    // costs seconds.
    let big = FakePortal::builder()
        .contacts(1_000_000)
        .rate_limit_off()
        .start()
        .await;
    let url = format!("{}crm.contact.list", big.webhook_url(1));
    let deep_fast = processing(
        &url,
        json!({"order": {"ID": "ASC"}, "filter": {">ID": 900_000}, "start": -1}),
    )
    .await;
    assert!(close(deep_fast, fast), "{deep_fast}");
    let deep_offset = processing(&url, json!({"start": 900_000})).await;
    let want = 0.005 + 900_050.0 * 20e-6 + (250.0 + 100_000.0) * 20e-6;
    assert!(close(deep_offset, want), "{deep_offset} vs {want}");
    // `list_row_cost(0)` leaves only the call.
    let free = FakePortal::builder()
        .list_row_cost(Duration::ZERO)
        .start()
        .await;
    let url = format!("{}crm.contact.list", free.webhook_url(1));
    assert!(close(processing(&url, json!({"start": 50})).await, 0.005));
}

#[tokio::test]
async fn a_filtered_fast_page_reads_only_the_rows_it_walks() {
    let portal = FakePortal::builder().rate_limit_off().start().await;
    let url = format!("{}crm.deal.list", portal.webhook_url(1));
    // The other conditions need each row: the page reads the rows it looked at up to its
    // 50th match, or to the end of the range.
    let (_, body) = post_json(
        &url,
        json!({"filter": {">ID": 100, "STAGE_ID": "NEW"}, "order": {"ID": "ASC"}, "start": -1, "select": ["ID"]}),
    )
    .await;
    let got = body["result"].as_array().unwrap().len();
    assert!(got > 0 && got < 37);
    let cost = body["time"]["processing"].as_f64().unwrap();
    assert!((cost - (0.005 + 37.0 * 20e-6)).abs() < 1e-6, "{cost}");
}

#[tokio::test]
async fn quirk_wrong_total_is_off_while_next_stays_right() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .quirk_wrong_total("CRM.Lead.List.json", -7)
        .start()
        .await;
    let hook = portal.webhook_url(1);
    let url = format!("{hook}crm.lead.list");
    let (_, first) = post_json(&url, json!({"select": ["ID"]})).await;
    assert_eq!(
        (first["total"].clone(), first["next"].clone()),
        (json!(405), json!(50))
    );
    // 412 leads really: the page at 400 has 12 rows and no next, though total says 405.
    let (_, last) = post_json(&url, json!({"select": ["ID"], "start": 400})).await;
    assert_eq!(last["result"].as_array().unwrap().len(), 12);
    assert_eq!(last["total"], 405);
    assert!(last.get("next").is_none());
    let (_, fast) = post_json(&url, json!({"start": -1})).await;
    assert_eq!(fast["total"], 0);
    // In a batch too; other methods tell the truth.
    let (_, body) = post_json(
        &format!("{hook}batch"),
        json!({"cmd": {"l": "crm.lead.list?start=350", "d": "crm.deal.list"}}),
    )
    .await;
    let r = &body["result"];
    assert_eq!(
        (
            r["result_total"]["l"].clone(),
            r["result_next"]["l"].clone()
        ),
        (json!(405), json!(400))
    );
    assert_eq!(r["result_total"]["d"], 137);
    // Never below zero.
    let tiny = FakePortal::builder()
        .quirk_wrong_total("crm.deal.list", -1000)
        .quirk_wrong_total("crm.contact.list", 3)
        .start()
        .await;
    let (_, body) = post_json(&format!("{}crm.deal.list", tiny.webhook_url(1)), json!({})).await;
    assert_eq!(
        (body["total"].clone(), body["next"].clone()),
        (json!(0), json!(50))
    );
    let (_, body) = post_json(
        &format!("{}crm.contact.list", tiny.webhook_url(1)),
        json!({"start": 50}),
    )
    .await;
    assert_eq!(body["total"], 103);
    assert!(body.get("next").is_none());
}

#[tokio::test]
async fn quirk_ignores_id_filter_makes_a_fast_scan_stand_still() {
    let portal = FakePortal::builder()
        .rate_limit_off()
        .quirk_ignores_id_filter("crm.deal.list")
        .start()
        .await;
    let hook = portal.webhook_url(1);
    let page = |method: &'static str, filter: Value| {
        let url = format!("{hook}{method}");
        async move {
            let (status, body) = post_json(
                &url,
                json!({"entityTypeId": 2, "filter": filter, "order": {"ID": "ASC"}, "select": ["ID"], "start": -1}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    for filter in [
        json!({">ID": 50}),
        json!({">=ID": 51}),
        json!({"<ID": 10, ">ID": 100}),
        json!({"<=ID": 3}),
    ] {
        let body = page("crm.deal.list", filter.clone()).await;
        assert_eq!(body["result"][0]["ID"], "1", "{filter}");
        assert_eq!(body["result"].as_array().unwrap().len(), 50, "{filter}");
    }
    // Other conditions, an exact ID among them, still apply.
    let body = page("crm.deal.list", json!({"ID": 7, ">ID": 100})).await;
    assert_eq!(body["result"], json!([{"ID": "7"}]));
    // Other methods, crm.item.list of the same deals too, are unaffected.
    let body = page("crm.contact.list", json!({">ID": 50})).await;
    assert_eq!(body["result"][0]["ID"], "51");
    let body = page("crm.item.list", json!({">id": 50})).await;
    assert_eq!(body["result"]["items"][0]["id"], 51);
}
