//! Typed batch, bulk writes and list streams through the fake portal.

#![allow(deprecated)]

use std::collections::HashSet;

use bitrix24::crm::{CrmContactAdd, CrmContactGet, CrmContactUpdate};
use bitrix24::types::{CrmContactAddFields, CrmContactUpdateFields};
use bitrix24::{Client, ErrorKind, Outcome, RateLimit, Retry};
use bitrix24_testkit::{FakePortal, Fault};
use serde_json::json;

async fn portal() -> FakePortal {
    FakePortal::builder()
        .rate_limit_off()
        .contacts(0)
        .start()
        .await
}

fn client(portal: &FakePortal) -> Client {
    Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .build()
        .unwrap()
}

fn add(name: &str) -> CrmContactAdd {
    CrmContactAdd::new().fields(CrmContactAddFields::new().name(name))
}

#[tokio::test]
async fn a_reference_carries_an_earlier_result_into_a_later_command() {
    let portal = portal().await;
    let client = client(&portal);
    let mut batch = client.batch();
    let contact = batch.push("0", add("Ann")).unwrap();
    let got = batch
        .push("1", CrmContactGet::new(contact.result()))
        .unwrap();
    let results = batch.send().await.unwrap();
    assert_eq!(results.requests(), 1);
    let id = results.get(&contact).into_result().unwrap().result;
    let fetched = results.get(&got).into_result().unwrap().result;
    assert_eq!(fetched.id, id);
    assert_eq!(results.labels().collect::<Vec<_>>(), ["0", "1"]);
}

#[tokio::test]
async fn halt_marks_the_rest_not_run() {
    let portal = portal().await;
    let client = client(&portal);
    let mut batch = client.batch();
    batch.halt(true);
    let a = batch.add(add("A")).unwrap();
    let bad = batch
        .push_raw("bad", "crm.contact.get", json!({"id": 999_999}))
        .unwrap();
    let c = batch.add(add("C")).unwrap();
    let results = batch.send().await.unwrap();
    assert!(results.get(&a).is_done());
    assert!(matches!(results.get(&bad), Outcome::Failed(_)));
    assert!(results.get(&c).is_not_run());
    assert_eq!(
        results.get(&c).into_result().unwrap_err().kind(),
        ErrorKind::NotRun
    );
}

#[tokio::test]
async fn call_many_returns_every_id_in_order() {
    let portal = portal().await;
    let client = client(&portal);
    let results = client
        .call_many((0..120).map(|i| add(&format!("C{i}"))))
        .results()
        .await;
    assert_eq!(results.len(), 120);
    let ids: Vec<u64> = results.into_iter().map(|r| r.unwrap().result).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    let batches = portal
        .requests()
        .iter()
        .filter(|r| r.method == "batch")
        .count();
    assert_eq!(batches, 3);
}

/// Every contact the portal holds, by a raw offset scan (the fake's own view).
async fn all_contacts(client: &Client) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let page = client
            .call_raw(
                "crm.contact.list",
                json!({"start": start, "select": ["ID", "NAME", "LAST_NAME"]}),
            )
            .read()
            .await
            .unwrap();
        out.extend(page.result.as_array().unwrap().iter().cloned());
        match page.next {
            Some(n) => start = n,
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_batch_of_120_mixed_commands_with_failures_and_references() {
    let portal = portal().await;
    let client = client(&portal);
    let mut batch = client.batch();
    batch.halt(false);
    let mut adds = Vec::new();
    let mut gets = Vec::new();
    let mut misses = Vec::new();
    let mut updates = Vec::new();
    // 40 groups of 3, so that no reference crosses a 50-command boundary... except that
    // 50 is not a multiple of 3: groups that would straddle one start after it instead.
    let mut i = 0;
    while batch.len() < 120 {
        let at = batch.len();
        if at % 50 > 47 || at + 3 > 120 {
            // Fillers up to the boundary: failures (an unknown id).
            misses.push(
                batch
                    .push(
                        format!("miss{at}"),
                        CrmContactGet::new(9_000_000 + at as u64),
                    )
                    .unwrap(),
            );
            continue;
        }
        let a = batch
            .push(format!("add{i}"), add(&format!("Mixed {i}")))
            .unwrap();
        let g = batch
            .push(format!("get{i}"), CrmContactGet::new(a.result()))
            .unwrap();
        let u = batch
            .push(
                format!("upd{i}"),
                CrmContactUpdate::new(
                    a.result(),
                    CrmContactUpdateFields::new().last_name(format!("L{i}")),
                ),
            )
            .unwrap();
        adds.push(a);
        gets.push(g);
        updates.push(u);
        i += 1;
    }
    assert_eq!(batch.len(), 120);
    let results = batch.send().await.unwrap();
    assert_eq!(results.requests(), 3, "120 commands in requests of 50");
    assert_eq!(results.len(), 120);
    for (k, ((a, g), u)) in adds.iter().zip(&gets).zip(&updates).enumerate() {
        let id = results.get(a).into_result().unwrap().result;
        let got = results.get(g).into_result().unwrap().result;
        assert_eq!(got.id, id);
        assert_eq!(got.name.as_deref(), Some(format!("Mixed {k}").as_str()));
        assert_eq!(results.get(u).into_result().unwrap().result, json!(true));
    }
    for m in &misses {
        match results.get(m) {
            Outcome::Failed(e) => assert!(e.is_not_found(), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(results.failed(), misses.len());
    assert_eq!(results.done(), 120 - misses.len());
    // Nothing twice, nothing lost: the portal holds exactly the contacts added, updated.
    let contacts = all_contacts(&client).await;
    assert_eq!(contacts.len(), adds.len());
    for (k, c) in contacts.iter().enumerate() {
        assert_eq!(c["LAST_NAME"], format!("L{k}"));
    }
}

#[tokio::test]
async fn labels_come_back_as_given_numeric_or_not() {
    let portal = portal().await;
    let client = client(&portal);
    let mut batch = client.batch();
    let labels = ["0", "1", "10", "7", "x y", "a[b]", "Привет", "_0"];
    let handles: Vec<_> = labels
        .iter()
        .map(|l| batch.push(*l, add(l)).unwrap())
        .collect();
    let results = batch.send().await.unwrap();
    assert_eq!(results.labels().collect::<Vec<_>>(), labels);
    let mut ids = HashSet::new();
    for (l, h) in labels.iter().zip(&handles) {
        assert_eq!(h.label(), *l);
        let id = results.get(h).into_result().unwrap().result;
        assert!(ids.insert(id), "label {l}: id {id} twice");
        let raw = results.get_raw(l).unwrap().into_result().unwrap().result;
        assert_eq!(raw, json!(id));
    }
    // In the order given: ids ascend with the labels' order.
    let in_order: Vec<u64> = handles
        .iter()
        .map(|h| results.get(h).ok().unwrap())
        .collect();
    assert!(in_order.windows(2).all(|w| w[0] < w[1]), "{in_order:?}");
    assert!(batch_labels_unique(&client));
}

fn batch_labels_unique(client: &Client) -> bool {
    let mut batch = client.batch();
    batch.push("same", add("a")).unwrap();
    let e = batch.push("same", add("b")).unwrap_err();
    e.kind() == ErrorKind::InvalidInput && batch.len() == 1
}

#[tokio::test]
async fn bad_references_are_refused_when_the_batch_is_built() {
    let portal = portal().await;
    let client = client(&portal);
    let mut other = client.batch();
    let foreign = other.push("x", add("x")).unwrap();
    let mut batch = client.batch();
    let e = batch
        .push("get", CrmContactGet::new(foreign.result()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("another batch"), "{e}");
    // Across the split: command 50 travels in the second request, command 49 in the first.
    let mut handles = Vec::new();
    for i in 0..50 {
        handles.push(batch.add(add(&format!("c{i}"))).unwrap());
    }
    let e = batch
        .push("late", CrmContactGet::new(handles[49].result()))
        .unwrap_err();
    assert!(e.to_string().contains("another request of 50"), "{e}");
    // Inside the second request, fine.
    let second = batch.push("second", add("s")).unwrap();
    batch
        .push("ok", CrmContactGet::new(second.result()))
        .unwrap();
    // A path segment that cannot be written inside [..].
    let e = batch
        .push("bad", CrmContactGet::new(second.field("a]b")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // A reference outside any batch is refused before anything is sent.
    portal.clear_requests();
    let e = client
        .call(&CrmContactGet::new(second.result()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(portal.requests().is_empty());
}

#[tokio::test]
async fn a_batch_with_references_halts_by_default() {
    let portal = portal().await;
    let client = client(&portal);
    let mut batch = client.batch();
    let missing = batch
        .push("missing", CrmContactGet::new(9_999_999))
        .unwrap();
    // Refers to the failed command: it must not run with the literal text.
    let update = batch
        .push(
            "update",
            CrmContactUpdate::new(missing.field("ID"), CrmContactUpdateFields::new().name("x")),
        )
        .unwrap();
    let after = batch.push("after", add("after")).unwrap();
    let results = batch.send().await.unwrap();
    assert!(matches!(results.get(&missing), Outcome::Failed(_)));
    assert!(results.get(&update).is_not_run());
    assert!(results.get(&after).is_not_run());
    assert_eq!(results.not_run(), 2);
    let log = portal.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].params["halt"], json!(1));
    assert!(all_contacts(&client).await.is_empty());
}

#[tokio::test]
async fn a_refusal_storm_during_call_many_loses_nothing_and_duplicates_nothing() {
    let portal = portal().await;
    let client = Client::builder()
        .webhook(portal.webhook_url(1))
        .rate_limit(RateLimit::off())
        .retry(Retry::default().max_attempts(3))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    // Twelve refusals of whole batch requests, spread over the run.
    portal.fail_next_for("batch", 12, Fault::QueryLimitExceeded);
    let results = client
        .call_many((0..500).map(|i| add(&format!("Storm {i}"))))
        .concurrency(4)
        .results()
        .await;
    let ids: Vec<u64> = results.iter().map(|r| r.as_ref().unwrap().result).collect();
    assert_eq!(ids.len(), 500);
    let contacts = all_contacts(&client).await;
    assert_eq!(contacts.len(), 500, "each add ran exactly once");
    // Result i is the ID of the contact made from request i.
    let name_of: std::collections::HashMap<u64, String> = contacts
        .iter()
        .map(|c| {
            (
                c["ID"].as_str().unwrap().parse().unwrap(),
                c["NAME"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(name_of[id], format!("Storm {i}"));
    }
    let refused = portal
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some(bitrix24::codes::QUERY_LIMIT_EXCEEDED))
        .count();
    assert_eq!(refused, 12);
}

#[tokio::test]
async fn a_lost_answer_in_call_many_is_reported_not_resent() {
    let portal = portal().await;
    let client = client(&portal);
    portal.fail_next_for("batch", 1, Fault::DropAfterExecuting);
    let results = client
        .call_many((0..120).map(|i| add(&format!("Lost {i}"))))
        .concurrency(1)
        .results()
        .await;
    // The first batch ran but its answer was lost: its 50 results are errors that say the
    // adds may have run; the other 70 came back.
    let (ok, err): (Vec<_>, Vec<_>) = results.iter().partition(|r| r.is_ok());
    assert_eq!((ok.len(), err.len()), (70, 50));
    for e in err {
        let e = e.as_ref().unwrap_err();
        assert!(e.maybe_executed(), "{e}");
    }
    assert!(results[..50].iter().all(Result::is_err));
    // Not sent again: 120 contacts, not 170.
    assert_eq!(all_contacts(&client).await.len(), 120);
    assert_eq!(
        portal
            .requests()
            .iter()
            .filter(|r| r.method == "batch")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_request_that_cannot_go_in_a_batch_fails_alone() {
    let portal = portal().await;
    let client = client(&portal);
    use bitrix24::crm::CrmDealAdd;
    use bitrix24::types::CrmDealAddFields;
    let deal = |title: &str, amount: f64| {
        CrmDealAdd::new().fields(CrmDealAddFields::new().title(title).opportunity(amount))
    };
    // NaN has no wire form: that request fails before anything is sent, the others run.
    let requests = vec![deal("one", 1.0), deal("nan", f64::NAN), deal("three", 3.0)];
    let results = client.call_many(requests).results().await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(!e.maybe_executed());
    assert!(results[2].is_ok());
    let log = portal.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].params["cmd"].as_object().unwrap().len(), 2);
}

mod streams {
    use super::*;
    use bitrix24::{Access, ListMethod, ListMode, ListModel, Method, MethodMeta, Params};
    use serde_json::Value;

    struct ContactList(Params);

    impl Method for ContactList {
        const META: &'static MethodMeta = &MethodMeta::new("crm.contact.list", Access::Read)
            .list(ListModel::new("").fast_scan(true));
        type Output = Vec<Value>;
        fn wire_params(&self) -> &Params {
            &self.0
        }
    }

    impl ListMethod for ContactList {
        type Item = Value;
    }

    async fn seeded(n: u64) -> FakePortal {
        FakePortal::builder()
            .rate_limit_off()
            .contacts(n)
            .start()
            .await
    }

    fn ids(items: &[Value]) -> Vec<u64> {
        items
            .iter()
            .map(|v| v["ID"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn every_mode_returns_each_item_once_in_order() {
        for n in [0u64, 1, 49, 50, 51, 120] {
            let portal = seeded(n).await;
            let client = client(&portal);
            for mode in [
                ListMode::Offset,
                ListMode::BatchedOffset,
                ListMode::Fast,
                ListMode::BatchedFast,
                ListMode::Auto,
            ] {
                let items = client
                    .stream(&ContactList(Params::new()))
                    .mode(mode)
                    .collect_all()
                    .await
                    .unwrap_or_else(|e| panic!("{n} {mode:?}: {e}"));
                let got = ids(&items);
                let want: Vec<u64> = (1..=n).collect();
                assert_eq!(got, want, "{n} items, {mode:?}");
            }
            for mode in [ListMode::Fast, ListMode::BatchedFast] {
                let items = client
                    .stream(&ContactList(Params::new()))
                    .mode(mode)
                    .descending()
                    .collect_all()
                    .await
                    .unwrap();
                let want: Vec<u64> = (1..=n).rev().collect();
                assert_eq!(ids(&items), want, "{n} items, {mode:?} descending");
            }
        }
    }
}
