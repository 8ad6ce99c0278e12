//! The same call as a JSON body, as a PHP query string inside `batch`, and as a form body
//! gives the same answer: empty values (`null`, `[]`, `{}`, `""`) read alike, booleans
//! read alike in every spelling, and operator keys, `+ & = %`, Cyrillic and date-times
//! survive the query string.

mod common;

use bitrix24_testkit::{FakePortal, FakePortalBuilder};
use common::*;
use serde_json::{json, Value};

/// A PHP query string as a client writes a `batch` command from JSON params: nested keys in
/// brackets, `null`, `[]` and `{}` as `key=`, `true`/`false` as `1`/`0`, every key and value
/// percent-encoded as PHP's `urlencode` does (so `+`, `&`, `=`, `%` and Cyrillic survive).
fn query(params: &Value) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    fn walk(key: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(&format!("{key}[{k}]"), x, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{key}[{i}]"), x, out);
                }
            }
            Value::Null | Value::Object(_) | Value::Array(_) => {
                out.push((key.into(), String::new()))
            }
            Value::Bool(b) => out.push((key.into(), if *b { "1" } else { "0" }.into())),
            Value::Number(n) => out.push((key.into(), n.to_string())),
            Value::String(s) => out.push((key.into(), s.clone())),
        }
    }
    let mut pairs = Vec::new();
    for (k, v) in params.as_object().unwrap() {
        walk(k, v, &mut pairs);
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// What the three ways answer, reduced to what must agree: `{result, total, next}` of a
/// success, `{error, error_description}` of a failure.
#[derive(Debug, PartialEq)]
struct Answer(Value);

/// `method` with `params` as a JSON body.
async fn as_json(portal: &FakePortal, method: &str, params: &Value) -> Answer {
    let (_, body) = post_json(
        &format!("{}{method}", portal.webhook_url(1)),
        params.clone(),
    )
    .await;
    Answer(match body.get("error") {
        Some(_) => json!({"error": body["error"], "error_description": body["error_description"]}),
        None => {
            json!({"result": body["result"], "total": body.get("total"), "next": body.get("next")})
        }
    })
}

/// `method` with `params` as a form body (the same query string).
async fn as_form(portal: &FakePortal, method: &str, params: &Value) -> Answer {
    let (_, body, _) = post_text(
        &format!("{}{method}", portal.webhook_url(1)),
        "application/x-www-form-urlencoded",
        &query(params),
    )
    .await;
    Answer(match body.get("error") {
        Some(_) => json!({"error": body["error"], "error_description": body["error_description"]}),
        None => {
            json!({"result": body["result"], "total": body.get("total"), "next": body.get("next")})
        }
    })
}

/// `method` with `params` as the one command of a batch (JSON body, `cmd` a query string).
async fn in_batch(portal: &FakePortal, method: &str, params: &Value) -> Answer {
    let cmd = format!("{method}?{}", query(params));
    let (status, body) = post_json(
        &format!("{}batch", portal.webhook_url(1)),
        json!({"cmd": {"c": cmd}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["result"];
    Answer(match r["result_error"].get("c") {
        Some(e) => e.clone(),
        None => {
            json!({"result": r["result"]["c"], "total": r["result_total"].get("c"), "next": r["result_next"].get("c")})
        }
    })
}

/// Asserts the three ways agree on a read, and returns the JSON answer.
async fn same_read(portal: &FakePortal, method: &str, params: Value) -> Value {
    let json = as_json(portal, method, &params).await;
    let batch = in_batch(portal, method, &params).await;
    let form = as_form(portal, method, &params).await;
    assert_eq!(json, batch, "{method} {params}\nquery: {}", query(&params));
    assert_eq!(json, form, "{method} {params}\nquery: {}", query(&params));
    json.0
}

/// Portals that give the same ids and timestamps to the same writes.
fn twin() -> FakePortalBuilder {
    FakePortal::builder()
        .rate_limit_off()
        .start_time(1_780_000_000)
        .time_scale(1e-9)
}

/// Runs the writes `calls` in order on three twin portals, one way each; asserts every
/// answer and then every record `check` reads back agree. Returns the JSON portal.
async fn same_writes(calls: &[(&str, Value)], check: &[(&str, Value)]) -> FakePortal {
    let (a, b, c) = (
        twin().start().await,
        twin().start().await,
        twin().start().await,
    );
    for (method, params) in calls {
        let json = as_json(&a, method, params).await;
        let batch = in_batch(&b, method, params).await;
        let form = as_form(&c, method, params).await;
        assert_eq!(json, batch, "{method} {params}\nquery: {}", query(params));
        assert_eq!(json, form, "{method} {params}\nquery: {}", query(params));
    }
    for (method, params) in check {
        let want = as_json(&a, method, params).await;
        assert_eq!(as_json(&b, method, params).await, want, "{method} {params}");
        assert_eq!(as_json(&c, method, params).await, want, "{method} {params}");
    }
    a
}

#[tokio::test]
async fn contact_add_makes_the_same_record_every_way() {
    let fields = json!({
        "NAME": "Анна + Ко & = 50% ?#[]",
        "LAST_NAME": "Ёлкина",
        "OPENED": true,
        "EXPORT": false,
        "COMMENTS": null,
        "POST": "",
        "PHONE": [
            {"VALUE": "+7 (900) 000-00-01", "VALUE_TYPE": "WORK"},
            {"VALUE": "+7 900 000 00 02", "VALUE_TYPE": "MOBILE"},
        ],
        "EMAIL": [],
    });
    let portal = same_writes(
        &[("crm.contact.add", json!({"fields": fields}))],
        &[("crm.contact.get", json!({"id": 101}))],
    )
    .await;
    let Answer(got) = as_json(&portal, "crm.contact.get", &json!({"id": 101})).await;
    let r = &got["result"];
    assert_eq!(r["NAME"], "Анна + Ко & = 50% ?#[]");
    assert_eq!(r["LAST_NAME"], "Ёлкина");
    assert_eq!(
        (r["OPENED"].clone(), r["EXPORT"].clone()),
        (json!("Y"), json!("N"))
    );
    assert_eq!(
        (r["COMMENTS"].clone(), r["POST"].clone()),
        (json!(""), json!(""))
    );
    assert_eq!(r["PHONE"].as_array().unwrap().len(), 2);
    assert_eq!(r["PHONE"][1]["VALUE"], "+7 900 000 00 02");
    assert_eq!(r["PHONE"][1]["VALUE_TYPE"], "MOBILE");
    assert_eq!(
        (
            r["EMAIL"].clone(),
            r["HAS_EMAIL"].clone(),
            r["HAS_PHONE"].clone()
        ),
        (json!([]), json!("N"), json!("Y"))
    );
}

#[tokio::test]
async fn empty_multi_fields_are_no_values_and_update_merges_by_id() {
    // Every spelling of "no phones" on add, each a contact of its own.
    let empties = [json!(""), json!([]), json!({}), json!(null)];
    let calls: Vec<(&str, Value)> = empties
        .iter()
        .map(|e| {
            (
                "crm.contact.add",
                json!({"fields": {"NAME": "No phone", "PHONE": e, "EMAIL": e}}),
            )
        })
        .collect();
    let gets: Vec<(&str, Value)> = (101..105)
        .map(|id| ("crm.contact.get", json!({"id": id})))
        .collect();
    let portal = same_writes(&calls, &gets).await;
    for id in 101..105 {
        let Answer(got) = as_json(&portal, "crm.contact.get", &json!({"id": id})).await;
        let r = &got["result"];
        assert_eq!(
            (r["PHONE"].clone(), r["EMAIL"].clone()),
            (json!([]), json!([])),
            "{got}"
        );
        assert_eq!(r["HAS_PHONE"], "N");
    }
    // Update: empty leaves the phones be; entries with an ID change or delete; without one add.
    let calls = [
        (
            "crm.contact.add",
            json!({"fields": {"NAME": "P", "PHONE": [{"VALUE": "111"}, {"VALUE": "222"}, {"VALUE": "333"}]}}),
        ),
        (
            "crm.contact.update",
            json!({"id": 101, "fields": {"PHONE": ""}}),
        ),
        (
            "crm.contact.update",
            json!({"id": 101, "fields": {"PHONE": []}}),
        ),
        (
            "crm.contact.update",
            json!({"id": 101, "fields": {"PHONE": null, "NAME": "Q"}}),
        ),
        // The seeded contact 1 has phone id 2; ids of the new ones come from the counter.
        (
            "crm.contact.update",
            json!({"id": 1, "fields": {"PHONE": [{"ID": 2, "VALUE": "999", "VALUE_TYPE": "HOME"}]}}),
        ),
    ];
    let check = [
        ("crm.contact.get", json!({"id": 101})),
        ("crm.contact.get", json!({"id": 1})),
    ];
    let portal = same_writes(&calls, &check).await;
    let get = |id: u64| {
        let portal = &portal;
        async move {
            as_json(portal, "crm.contact.get", &json!({"id": id}))
                .await
                .0["result"]
                .clone()
        }
    };
    let r = get(101).await;
    assert_eq!(r["NAME"], "Q");
    let values: Vec<&str> = r["PHONE"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["VALUE"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["111", "222", "333"]);
    let ids: Vec<String> = r["PHONE"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ID"].as_str().unwrap().to_owned())
        .collect();
    let seeded = get(1).await;
    assert_eq!(
        seeded["PHONE"],
        json!([{"ID": "2", "VALUE_TYPE": "HOME", "VALUE": "999", "TYPE_ID": "PHONE"}])
    );
    // Delete one by DELETE=Y and one by an empty VALUE, add one, in JSON and in a batch.
    let update = json!({"id": 101, "fields": {"PHONE": [{"ID": ids[0], "DELETE": "Y"}, {"ID": ids[1], "VALUE": ""}, {"VALUE": "444"}]}});
    let a = as_json(&portal, "crm.contact.update", &update).await;
    assert_eq!(a.0["result"], true);
    let r = get(101).await;
    let values: Vec<&str> = r["PHONE"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["VALUE"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["333", "444"]);
    // No answer anywhere holds `"PHONE": ""`.
    let Answer(list) = as_json(
        &portal,
        "crm.contact.list",
        &json!({"filter": {">=ID": 100}, "select": ["ID", "PHONE", "EMAIL"]}),
    )
    .await;
    assert!(!list.to_string().contains(r#""PHONE":"""#), "{list}");
}

#[tokio::test]
async fn list_params_read_alike_every_way() {
    let portal = twin().start().await;
    // Empty select / filter / order / start in every spelling: the default page.
    let plain = same_read(&portal, "crm.deal.list", json!({})).await;
    for empty in [json!(null), json!([]), json!({}), json!("")] {
        let p = json!({"select": empty, "filter": empty, "order": empty, "start": empty});
        let got = same_read(&portal, "crm.deal.list", p.clone()).await;
        assert_eq!(got, plain, "{p}");
    }
    assert_eq!(plain["total"], 137);
    // Operator keys, mixed.
    let got = same_read(
        &portal,
        "crm.deal.list",
        json!({"filter": {">=ID": 30, "<ID": 120, "!STAGE_ID": "NEW", "%TITLE": "#1", "@CURRENCY_ID": ["EUR", "USD"]}, "order": {"OPPORTUNITY": "DESC", "ID": "ASC"}, "select": ["ID", "STAGE_ID", "TITLE"]}),
    )
    .await;
    let rows = got["result"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["STAGE_ID"] != "NEW" && r["TITLE"].as_str().unwrap().contains("#1")));
    // Date-times with an offset (`+` must survive the query string), dates, both bounds.
    let got = same_read(
        &portal,
        "crm.deal.list",
        json!({"filter": {">=DATE_CREATE": "2026-03-01T03:04:05+03:00", "<DATE_CREATE": "2026-05-01"}, "select": ["ID", "DATE_CREATE"], "start": -1}),
    )
    .await;
    let n = got["result"].as_array().unwrap().len();
    assert!(n > 0 && n < 50, "{got}");
    // Booleans as filter values: true, "1", "Y" alike.
    let yes = same_read(
        &portal,
        "crm.deal.list",
        json!({"filter": {"OPENED": true}, "select": ["ID"]}),
    )
    .await;
    for v in [json!("1"), json!("Y"), json!("true")] {
        assert_eq!(
            same_read(
                &portal,
                "crm.deal.list",
                json!({"filter": {"OPENED": v}, "select": ["ID"]})
            )
            .await,
            yes
        );
    }
    assert_eq!(yes["total"], 137);
    // The other list methods.
    same_read(&portal, "crm.item.list", json!({"entityTypeId": 2, "filter": {">id": 100, "!stageId": "NEW"}, "order": {"id": "DESC"}, "select": ["id", "title"]})).await;
    same_read(&portal, "tasks.task.list", json!({"filter": {">=ID": 10, "!STATUS": 2}, "order": {"ID": "ASC"}, "select": ["ID", "TITLE"], "start": 0})).await;
    same_read(
        &portal,
        "user.get",
        json!({"FILTER": {">ID": 1, "ACTIVE": true}, "sort": "ID", "order": "DESC"}),
    )
    .await;
    same_read(
        &portal,
        "department.get",
        json!({">ID": 1, "sort": "NAME", "order": "DESC"}),
    )
    .await;
    // And the errors.
    let e = same_read(
        &portal,
        "crm.deal.list",
        json!({"filter": {"%=NOPE": "a+b"}}),
    )
    .await;
    assert_eq!(e["error"], "INVALID_ARG_VALUE");
}

#[tokio::test]
async fn values_with_special_characters_filter_alike() {
    let name = "Анна + Ко & = 50% ?#[]";
    let portal = same_writes(
        &[(
            "crm.contact.add",
            json!({"fields": {"NAME": name, "LAST_NAME": "Ёлкина"}}),
        )],
        &[],
    )
    .await;
    for filter in [
        json!({"=NAME": name}),
        json!({"NAME": name}),
        json!({"%NAME": "ко & = 50%"}),
        json!({"%LAST_NAME": "ЁЛК"}),
        json!({"=%NAME": "анна + %"}),
    ] {
        let got = same_read(
            &portal,
            "crm.contact.list",
            json!({"filter": filter, "select": ["ID", "NAME"]}),
        )
        .await;
        assert_eq!(
            got["result"],
            json!([{"ID": "101", "NAME": name}]),
            "{filter}"
        );
    }
    let got = same_read(
        &portal,
        "crm.contact.list",
        json!({"filter": {"!%NAME": "50%"}, "select": ["ID"]}),
    )
    .await;
    assert_eq!(got["total"], 100);
}

#[tokio::test]
async fn flags_read_alike_in_every_spelling() {
    // A flag param (`scope`'s `full`) given true, "1", "Y", "true" reads as true; false,
    // "0", "N", "", null as false.
    let portal = FakePortal::builder().webhook_scopes(&["crm"]).start().await;
    let full = as_json(&portal, "scope", &json!({"full": true})).await;
    let mine = as_json(&portal, "scope", &json!({})).await;
    assert_ne!(full, mine);
    for v in [json!(true), json!("1"), json!("Y"), json!("true"), json!(1)] {
        assert_eq!(
            as_json(&portal, "scope", &json!({"full": v})).await,
            full,
            "{v}"
        );
        assert_eq!(
            in_batch(&portal, "scope", &json!({"full": v})).await,
            full,
            "{v}"
        );
    }
    for v in [
        json!(false),
        json!("0"),
        json!("N"),
        json!(""),
        json!(null),
        json!(0),
    ] {
        assert_eq!(
            as_json(&portal, "scope", &json!({"full": v})).await,
            mine,
            "{v}"
        );
        assert_eq!(
            in_batch(&portal, "scope", &json!({"full": v})).await,
            mine,
            "{v}"
        );
    }
}

#[tokio::test]
async fn an_empty_keyboard_is_no_keyboard_every_way() {
    let sink = EventSink::start().await;
    let portal = FakePortal::start().await;
    let hook = portal.webhook_url(1);
    let (_, r) = post_json(&format!("{hook}imbot.register"), json!({"CODE": "kb", "CLIENT_ID": "kb-bot", "EVENT_HANDLER": sink.url("h"), "PROPERTIES": {"NAME": "Kb"}})).await;
    let bot = r["result"].as_u64().unwrap();
    for empty in [json!([]), json!({}), json!(""), json!(null)] {
        let p = json!({"CLIENT_ID": "kb-bot", "BOT_ID": bot, "DIALOG_ID": "1", "MESSAGE": "hi", "KEYBOARD": empty, "ATTACH": empty});
        for answer in [
            as_json(&portal, "imbot.message.add", &p).await,
            in_batch(&portal, "imbot.message.add", &p).await,
        ] {
            assert!(answer.0["result"].is_u64(), "{empty}: {answer:?}");
        }
    }
    let messages = portal.messages("1");
    assert_eq!(messages.len(), 8);
    assert!(
        messages
            .iter()
            .all(|m| m.keyboard.is_none() && m.attach.is_none()),
        "{messages:?}"
    );
}
