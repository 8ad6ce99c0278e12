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
async fn commands_refused_inside_a_batch_are_sent_again_once() {
    let portal = portal().await;
    let client = client(&portal);
    // Three commands of the first batch are refused without running.
    portal.fail_next_command("crm.contact.add", 3, Fault::QueryLimitExceeded);
    let results = client
        .call_many((0..120).map(|i| add(&format!("Again {i}"))))
        .concurrency(1)
        .results()
        .await;
    assert!(results.iter().all(Result::is_ok));
    let contacts = all_contacts(&client).await;
    assert_eq!(contacts.len(), 120, "each add ran exactly once");
    let batches = portal
        .requests()
        .iter()
        .filter(|r| r.method == "batch")
        .count();
    assert_eq!(batches, 4, "three batches and one for the refused commands");
}

#[tokio::test]
async fn a_command_paused_past_the_deadline_fails_and_the_rest_run() {
    let portal = portal().await;
    let client = client(&portal);
    // Both adds refused: the method is paused (no reset known: 60 s), past the 2 s deadline.
    portal.fail_next_command("crm.contact.add", 2, Fault::OperationTimeLimit);
    let mut batch = client.batch();
    batch.timeout(std::time::Duration::from_secs(2));
    let a = batch.push("a", add("a")).unwrap();
    let b = batch.push("b", add("b")).unwrap();
    let user = batch.push_raw("me", "user.current", json!({})).unwrap();
    let started = std::time::Instant::now();
    let results = batch.send().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    for h in [&a, &b] {
        match results.get(h) {
            Outcome::Failed(e) => {
                assert!(e.is_operation_time_limit(), "{e}");
                assert!(!e.maybe_executed());
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(results.get(&user).is_done());
    assert_eq!(results.requests(), 1);
    assert!(all_contacts(&client).await.is_empty());
    // The method stays paused for this client: the next batch with it waits (not tested:
    // 60 s). A fresh client, whose refused command's method then answers in the same
    // batch, sends it again at once.
    let client = self::client(&portal);
    portal.fail_next_command("crm.contact.add", 1, Fault::OperationTimeLimit);
    let mut batch = client.batch();
    let a = batch.push("a", add("a")).unwrap();
    let b = batch.push("b", add("b")).unwrap();
    let results = batch.send().await.unwrap();
    assert!(results.get(&a).is_done() && results.get(&b).is_done());
    assert_eq!(results.requests(), 2);
    assert_eq!(all_contacts(&client).await.len(), 2);
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
    use bitrix24::crm::{CrmContactList, CrmItemList};
    use bitrix24::tasks::TasksTaskList;
    use bitrix24::user::UserGet;
    use bitrix24::ListMode;
    use futures_util::StreamExt;
    use std::sync::{Arc, Mutex};

    async fn seeded(n: u64) -> FakePortal {
        FakePortal::builder()
            .rate_limit_off()
            .contacts(n)
            .start()
            .await
    }

    const MODES: [ListMode; 5] = [
        ListMode::Offset,
        ListMode::BatchedOffset,
        ListMode::Fast,
        ListMode::BatchedFast,
        ListMode::Auto,
    ];

    #[tokio::test]
    async fn every_mode_returns_each_item_once_in_order() {
        for n in [0u64, 1, 49, 50, 51, 120] {
            let portal = seeded(n).await;
            let client = client(&portal);
            for mode in MODES {
                let items = client
                    .stream(&CrmContactList::new().select(["ID", "NAME"]))
                    .mode(mode)
                    .collect_all()
                    .await
                    .unwrap_or_else(|e| panic!("{n} {mode:?}: {e}"));
                let got: Vec<u64> = items.iter().map(|c| c.id).collect();
                let want: Vec<u64> = (1..=n).collect();
                assert_eq!(got, want, "{n} items, {mode:?}");
            }
            for mode in [ListMode::Fast, ListMode::BatchedFast, ListMode::Auto] {
                let items = client
                    .crm()
                    .contact_list()
                    .order(json!({"ID": "DESC"}))
                    .stream()
                    .mode(mode)
                    .collect_all()
                    .await
                    .unwrap();
                let want: Vec<u64> = (1..=n).rev().collect();
                let got: Vec<u64> = items.iter().map(|c| c.id).collect();
                assert_eq!(got, want, "{n} items, {mode:?} descending");
            }
        }
    }

    #[tokio::test]
    async fn a_full_scan_costs_about_one_request_per_2500_items() {
        let portal = seeded(20_000).await;
        let client = client(&portal);
        for (mode, most) in [
            (ListMode::BatchedFast, 9),
            (ListMode::BatchedOffset, 9),
            (ListMode::Auto, 9),
        ] {
            portal.clear_requests();
            let progress = Arc::new(Mutex::new(Vec::new()));
            let seen = progress.clone();
            let mut stream = client
                .crm()
                .contact_list()
                .select(["ID"])
                .stream()
                .mode(mode)
                .on_progress(move |p| seen.lock().unwrap().push(p.clone()));
            let (mut count, mut last) = (0u64, 0u64);
            while let Some(c) = stream.next().await {
                let id = c.unwrap().id;
                assert!(id > last, "{mode:?}: {id} after {last}");
                last = id;
                count += 1;
            }
            assert_eq!(count, 20_000, "{mode:?}");
            let requests = portal.requests().len();
            assert!(requests <= most, "{mode:?}: {requests} requests");
            let progress = progress.lock().unwrap();
            let end = progress.last().unwrap();
            assert!(end.finished);
            assert_eq!(end.items, 20_000);
            assert_eq!(end.requests as usize, requests);
            if mode == ListMode::BatchedOffset {
                assert_eq!(end.total, Some(20_000));
            }
        }
    }

    #[tokio::test]
    async fn a_cursor_that_does_not_move_is_an_error_not_a_loop() {
        let portal = FakePortal::builder()
            .rate_limit_off()
            .contacts(200)
            .quirk_ignores_id_filter("crm.contact.list")
            .start()
            .await;
        let client = client(&portal);
        for mode in [ListMode::Fast, ListMode::BatchedFast, ListMode::Auto] {
            let e = client
                .crm()
                .contact_list()
                .stream()
                .mode(mode)
                .collect_all()
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::CursorStalled, "{mode:?}: {e}");
        }
        // Offsets still work on such a method.
        let all = client
            .crm()
            .contact_list()
            .stream()
            .mode(ListMode::Offset)
            .collect_all()
            .await
            .unwrap();
        assert_eq!(all.len(), 200);
    }

    #[tokio::test]
    async fn a_wrong_total_neither_cuts_the_list_nor_loops() {
        for delta in [-77i64, 130] {
            let portal = FakePortal::builder()
                .rate_limit_off()
                .contacts(333)
                .quirk_wrong_total("crm.contact.list", delta)
                .start()
                .await;
            let client = client(&portal);
            for mode in MODES {
                let items = client
                    .crm()
                    .contact_list()
                    .stream()
                    .mode(mode)
                    .collect_all()
                    .await
                    .unwrap();
                let ids: Vec<u64> = items.iter().map(|c| c.id).collect();
                assert_eq!(
                    ids,
                    (1..=333).collect::<Vec<_>>(),
                    "total off by {delta}, {mode:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_request_s_own_filter_order_and_start_are_kept() {
        let portal = seeded(300).await;
        let client = client(&portal);
        // A filter: the cursor is added beside it, in every mode.
        for mode in [
            ListMode::Offset,
            ListMode::BatchedOffset,
            ListMode::Fast,
            ListMode::BatchedFast,
        ] {
            let items = client
                .crm()
                .contact_list()
                .filter(json!({">ID": 100, "<=ID": 260}))
                .stream()
                .mode(mode)
                .collect_all()
                .await
                .unwrap();
            let ids: Vec<u64> = items.iter().map(|c| c.id).collect();
            assert_eq!(ids, (101..=260).collect::<Vec<_>>(), "{mode:?}");
        }
        // An order by another field: offsets, in that order.
        let by_name = client
            .crm()
            .contact_list()
            .order(json!({"NAME": "ASC"}))
            .stream()
            .collect_all()
            .await
            .unwrap();
        assert_eq!(by_name.len(), 300);
        assert!(by_name.windows(2).all(|w| w[0].name <= w[1].name));
        let e = client
            .crm()
            .contact_list()
            .order(json!({"NAME": "ASC"}))
            .stream()
            .mode(ListMode::Fast)
            .collect_all()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        // The caller's start is where it begins.
        let tail = client
            .crm()
            .contact_list()
            .start(250)
            .stream()
            .collect_all()
            .await
            .unwrap();
        assert_eq!(
            tail.iter().map(|c| c.id).collect::<Vec<_>>(),
            (251..=300).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn crm_item_tasks_and_users_page_by_their_own_keys() {
        let portal = FakePortal::builder()
            .rate_limit_off()
            .contacts(130)
            .tasks(120)
            .users(75)
            .start()
            .await;
        let client = client(&portal);
        for mode in MODES {
            let items = client
                .stream(&CrmItemList::new(3).select(["id", "name"]))
                .mode(mode)
                .collect_all()
                .await
                .unwrap();
            assert_eq!(
                items.iter().map(|i| i.id).collect::<Vec<_>>(),
                (1..=130).collect::<Vec<_>>(),
                "crm.item.list {mode:?}"
            );
        }
        for mode in [ListMode::Offset, ListMode::BatchedOffset, ListMode::Auto] {
            let tasks = client
                .stream(&TasksTaskList::new().select(["ID", "TITLE"]))
                .mode(mode)
                .collect_all()
                .await
                .unwrap();
            assert_eq!(tasks.len(), 120, "tasks.task.list {mode:?}");
            let users = client
                .stream(&UserGet::new().filter(json!({"ACTIVE": true})))
                .mode(mode)
                .collect_all()
                .await
                .unwrap();
            assert!(
                users.len() > 50 && users.len() <= 75,
                "user.get {mode:?}: {}",
                users.len()
            );
        }
        // user.get's filter is `FILTER`: the request never carries a second, lowercase one.
        assert!(portal
            .requests()
            .iter()
            .filter(|r| r.method == "user.get")
            .all(|r| r.params.get("filter").is_none()));
    }

    #[tokio::test]
    async fn dropping_a_stream_stops_it() {
        let portal = seeded(5_000).await;
        let client = client(&portal);
        let first: Vec<_> = client
            .crm()
            .contact_list()
            .stream()
            .take(10)
            .collect()
            .await;
        assert_eq!(first.len(), 10);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(portal.requests().len(), 1, "one page was enough");
    }
}

mod encoding {
    //! The same call as a JSON body and inside a batch (a PHP query string) means the same.
    use super::*;
    use serde_json::Value;

    /// The record without what differs between two adds (ID, dates, multi-field ids).
    fn comparable(mut v: Value) -> Value {
        if let Some(o) = v.as_object_mut() {
            for k in ["ID", "DATE_CREATE", "DATE_MODIFY"] {
                o.remove(k);
            }
            for k in ["PHONE", "EMAIL", "WEB", "IM"] {
                if let Some(Value::Array(items)) = o.get_mut(k) {
                    for i in items {
                        if let Some(i) = i.as_object_mut() {
                            i.remove("ID");
                        }
                    }
                }
            }
        }
        v
    }

    async fn both_ways(client: &Client, method: &str, params: Value) -> (Value, Value) {
        let direct = client
            .call_raw(method, params.clone())
            .await
            .unwrap_or_else(|e| panic!("{method} as JSON: {e}"))
            .result;
        let mut batch = client.batch();
        let h = batch.push_raw("c", method, params).unwrap();
        let results = batch.send().await.unwrap();
        let batched = results
            .get(&h)
            .into_result()
            .unwrap_or_else(|e| panic!("{method} in batch: {e}"))
            .result;
        (direct, batched)
    }

    async fn get(client: &Client, id: &Value) -> Value {
        client
            .call_raw("crm.contact.get", json!({ "id": id }))
            .read()
            .await
            .unwrap()
            .result
    }

    #[tokio::test]
    async fn an_add_means_the_same_as_json_and_in_a_batch() {
        let portal = portal().await;
        let client = client(&portal);
        let cases = [
            json!({"NAME": "Иван", "LAST_NAME": "Петров-Водкин"}),
            json!({"NAME": "A+B & C=D", "LAST_NAME": "100% #1 ?x=1&y=2", "COMMENTS": "line 1\nline 2\ttab"}),
            json!({"NAME": "Multi", "PHONE": [
                {"VALUE": "+7 (999) 111-22-33", "VALUE_TYPE": "WORK"},
                {"VALUE": "112233", "VALUE_TYPE": "HOME"}
            ], "EMAIL": [{"VALUE": "a+b@example.com", "VALUE_TYPE": "WORK"}]}),
            json!({"NAME": "Dates", "BIRTHDATE": "1990-01-02T03:04:05+03:00"}),
            json!({"NAME": "Flags", "OPENED": "N", "EXPORT": "Y"}),
            json!({"NAME": "Empties", "PHONE": [], "EMAIL": {}, "COMMENTS": null, "LAST_NAME": ""}),
            json!({"NAME": "Brackets [x] {y}", "LAST_NAME": "$result is [not] a reference"}),
        ];
        for fields in cases {
            let (a, b) = both_ways(&client, "crm.contact.add", json!({ "fields": fields })).await;
            let (ra, rb) = (get(&client, &a).await, get(&client, &b).await);
            assert_eq!(comparable(ra), comparable(rb), "fields {fields}");
        }
    }

    #[tokio::test]
    async fn text_the_portal_would_replace_is_refused_in_a_batch() {
        let portal = portal().await;
        let client = client(&portal);
        let mut batch = client.batch();
        let e = batch
            .push_raw(
                "c",
                "crm.contact.add",
                json!({"fields": {"NAME": "x", "COMMENTS": "see $result[a][ID]"}}),
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("fields[COMMENTS]"), "{e}");
        assert!(batch.is_empty());
        // As a JSON body it means what it says.
        let id = client
            .call_raw(
                "crm.contact.add",
                json!({"fields": {"NAME": "x", "COMMENTS": "see $result[a][ID]"}}),
            )
            .await
            .unwrap()
            .result;
        assert_eq!(get(&client, &id).await["COMMENTS"], "see $result[a][ID]");
    }

    #[tokio::test]
    async fn a_filtered_list_means_the_same_as_json_and_in_a_batch() {
        let portal = FakePortal::builder()
            .rate_limit_off()
            .contacts(300)
            .start()
            .await;
        let client = client(&portal);
        for name in ["A & B", "Ärger+Ü", "Ölaf = 1"] {
            client
                .call_raw(
                    "crm.contact.add",
                    json!({"fields": {"NAME": name, "LAST_NAME": "Zz"}}),
                )
                .await
                .unwrap();
        }
        let cases = [
            json!({"filter": {">=ID": 120, "<ID": 180}, "order": {"ID": "DESC"}, "select": ["ID", "NAME"]}),
            json!({"filter": {"!NAME": "Anna", ">ID": 250}, "select": ["ID", "NAME"]}),
            json!({"filter": {"%NAME": "A & B"}, "select": ["ID", "NAME"]}),
            json!({"filter": {"=NAME": "Ärger+Ü"}, "select": ["ID", "NAME"]}),
            json!({"filter": {"NAME": "Ölaf = 1"}, "select": ["ID"]}),
            json!({"filter": {">DATE_CREATE": "2020-01-01T00:00:00+03:00"}, "select": ["ID"], "start": 50}),
            json!({"filter": {"@ID": [3, 5, 7]}, "select": ["ID"]}),
            json!({"filter": {}, "select": [], "start": 250}),
        ];
        for params in cases {
            let (a, b) = both_ways(&client, "crm.contact.list", params.clone()).await;
            assert_eq!(a, b, "params {params}");
            assert!(
                a.as_array().is_some_and(|a| !a.is_empty()),
                "params {params}: {a}"
            );
        }
    }

    #[tokio::test]
    async fn a_boolean_filter_means_the_same_as_json_and_in_a_batch() {
        let portal = FakePortal::builder()
            .rate_limit_off()
            .users(12)
            .start()
            .await;
        let client = client(&portal);
        for params in [
            json!({"FILTER": {"ACTIVE": true}, "ADMIN_MODE": true}),
            json!({"FILTER": {"ACTIVE": false}}),
        ] {
            let (a, b) = both_ways(&client, "user.get", params.clone()).await;
            assert_eq!(a, b, "params {params}");
        }
    }
}

#[test]
fn streams_and_batches_can_be_spawned() {
    fn spawnable<T: Send + 'static>(_: &T) {}
    let client = Client::webhook("https://example.bitrix24.com/rest/1/abcdefgh/").unwrap();
    spawnable(&client.crm().contact_list().stream());
    spawnable(&client.call_many(vec![add("a")]));
    let batch = client.batch();
    spawnable(&batch);
    spawnable(&batch.send());
}

#[test]
fn debug_output_shows_no_parameter_values() {
    let client = Client::webhook("https://example.bitrix24.com/rest/1/s3cr3tc0de/").unwrap();
    let mut batch = client.batch();
    batch
        .push_raw(
            "bot",
            "imbot.register",
            json!({"CLIENT_ID": "very-secret-client-id", "CODE": "x"}),
        )
        .unwrap();
    let shown = format!("{batch:?}");
    assert!(!shown.contains("very-secret-client-id"), "{shown}");
    assert!(!shown.contains("s3cr3tc0de"), "{shown}");
    assert!(shown.contains("imbot.register"), "{shown}");
    let stream = format!("{:?}", client.crm().contact_list().stream());
    assert!(!stream.contains("s3cr3tc0de"), "{stream}");
}

#[tokio::test]
async fn the_batch_request_itself_carries_no_operating_time() {
    // limits.md: `batch` is not billed; its commands are, each under its own method.
    let portal = portal().await;
    let client = client(&portal);
    let answer = client
        .call_raw("batch", json!({"cmd": {"a": "user.current"}}))
        .read()
        .await
        .unwrap();
    let time = answer.time.unwrap();
    assert_eq!(time.operating, None);
    assert_eq!(time.operating_reset_at, None);
    assert!(answer.result["result_time"]["a"]["operating"].is_number());
}
