//! Typed batch, bulk writes and list streams through the fake portal.

#![allow(deprecated)]

use bitrix24::crm::{CrmContactAdd, CrmContactGet};
use bitrix24::types::CrmContactAddFields;
use bitrix24::{Client, ErrorKind, Outcome, RateLimit};
use bitrix24_testkit::FakePortal;
use serde_json::json;

async fn portal() -> FakePortal {
    FakePortal::builder().rate_limit_off().start().await
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
