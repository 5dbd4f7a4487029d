//! Web Push in process: a [`Push`] over a store in a temporary directory, sending to the push
//! service stand-in of `test-support` on loopback, which checks each VAPID token against the
//! coordinator's key and keeps the encrypted pushes; the tests decrypt them with the
//! subscriber's own keys. A test push is the barrier: pushes go out one job at a time, so once
//! it arrived, everything queued before it has been sent or skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use piface_test_support::push_service::{PushService, Subscriber};
use serde_json::{json, Value};

use super::*;
use crate::store::RedbStore;

const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    push: Arc<Push>,
    service: PushService,
    store: Arc<dyn StateStore>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(RedbStore::open(&dir.path().join("state.redb")).unwrap());
    let push = Push::start(dir.path(), None, store.clone(), BTreeMap::new());
    let service = PushService::start().await.unwrap();
    service.expect_key(push.vapid().unwrap().public_key());
    Setup { push, service, store, _dir: dir }
}

impl Setup {
    fn subscribe(&self, s: &Subscriber) -> PushSubscriptionRecord {
        let sub = s.subscription();
        let keys = &sub["keys"];
        self.push
            .subscribe(&s.endpoint, keys["p256dh"].as_str().unwrap(), keys["auth"].as_str().unwrap(), None)
            .unwrap()
    }

    /// Sends a test push to `sub` and waits until the service holds `count` pushes in all.
    async fn barrier(
        &self,
        sub: &PushSubscriptionRecord,
        count: usize,
    ) -> Vec<piface_test_support::push_service::Push> {
        assert_eq!(self.push.test(&sub.id).await.unwrap(), 201);
        let pushes = self.service.wait_for(count, WAIT).await.unwrap();
        assert_eq!(pushes.len(), count, "pushes: {:?}", kinds_of(&pushes, None));
        assert!(self.service.refusals().is_empty(), "{:?}", self.service.refusals());
        pushes
    }
}

fn session(id: &str) -> SessionInfo {
    SessionInfo { id: id.into(), name: format!("name of {id}") }
}

fn kinds_of(pushes: &[piface_test_support::push_service::Push], by: Option<&Subscriber>) -> Vec<String> {
    pushes
        .iter()
        .map(|p| match by {
            Some(s) => s.decrypt_json(p).unwrap()["kind"].as_str().unwrap().to_string(),
            None => p.name.clone(),
        })
        .collect()
}

#[tokio::test]
async fn a_run_s_end_is_pushed_encrypted_for_the_subscriber_with_a_token_the_service_verifies() {
    let t = setup().await;
    let phone = t.service.subscriber("phone");
    let sub = t.subscribe(&phone);
    t.push.notifier().notify(Event::TurnEnded { session: session("s1") });
    let pushes = t.service.wait_for(1, WAIT).await.unwrap();
    let payload: Value = phone.decrypt_json(&pushes[0]).unwrap();
    assert_eq!(
        payload,
        json!({
            "type": "piface_notification", "kind": "turn_end", "title": "name of s1",
            "body": "pi is done and waiting for you", "url": "/session/s1", "tag": "piface-session-s1",
            "session_id": "s1",
        })
    );
    let p = &pushes[0];
    assert_eq!((p.ttl, p.urgency.as_deref()), (TTL.as_secs(), Some("normal")));
    assert_eq!(p.subject, FALLBACK_CONTACT, "no --push-contact and no HTTPS page");
    assert!(t.service.refusals().is_empty());
    // Another browser's keys cannot read it.
    assert!(t.service.subscriber("other").decrypt(p).is_err());
    t.barrier(&sub, 2).await;
}

#[tokio::test]
async fn nothing_is_pushed_about_a_session_one_of_whose_clients_is_visible() {
    let t = setup().await;
    let phone = t.service.subscriber("phone");
    let sub = t.subscribe(&phone);
    let notifier = t.push.notifier();
    let hidden = t.push.watch("s1");
    let visible = t.push.watch("s1");
    visible.set_visible(true);
    assert!(t.push.watched("s1") && !t.push.watched("s2"));
    notifier.notify(Event::TurnEnded { session: session("s1") });
    notifier.notify(Event::Attention { session: session("s1"), request: None });
    // Another session's news is pushed.
    notifier.notify(Event::TurnEnded { session: session("s2") });
    let pushes = t.barrier(&sub, 2).await;
    assert_eq!(phone.decrypt_json(&pushes[0]).unwrap()["session_id"], "s2");
    // The page went to the background, then its socket closed: pushed again.
    visible.set_visible(false);
    notifier.notify(Event::TurnEnded { session: session("s1") });
    drop(visible);
    notifier.notify(Event::Exited { session: session("s1"), code: Some(3), stderr: "x\nboom\n\n".into() });
    drop(hidden);
    assert!(t.push.watching.lock().unwrap().is_empty(), "dropped watches leave nothing behind");
    let pushes = t.barrier(&sub, 5).await;
    assert_eq!(kinds_of(&pushes, Some(&phone)), ["turn_end", "test", "turn_end", "exited", "test"]);
    let exited = phone.decrypt_json(&pushes[3]).unwrap();
    assert_eq!(exited["body"], "pi stopped (exit code 3): boom");
    assert_eq!(pushes[3].urgency.as_deref(), Some("high"));
}

#[tokio::test]
async fn mutes_hold_per_browser_and_per_session_and_a_test_ignores_them() {
    let t = setup().await;
    let (phone, laptop) = (t.service.subscriber("phone"), t.service.subscriber("laptop"));
    let (p, l) = (t.subscribe(&phone), t.subscribe(&laptop));
    let known = |s: &str| s != "gone";
    let sessions: BTreeMap<String, bool> = [("s1".to_string(), true), ("gone".to_string(), true)].into();
    let muted = t.push.set_mutes(&p.id, None, &sessions, known).unwrap();
    assert_eq!(muted.muted_sessions, ["s1"], "a mute of an unknown session is dropped");
    t.push.set_mutes(&l.id, Some(true), &BTreeMap::new(), known).unwrap();
    let notifier = t.push.notifier();
    notifier.notify(Event::TurnEnded { session: session("s1") }); // muted by both
    notifier.notify(Event::TurnEnded { session: session("s2") }); // the phone only
    notifier.notify(Event::AgentDown { agent: "gpu-box".into() }); // the phone only: per-session mutes do not apply
    let pushes = t.barrier(&l, 3).await;
    assert_eq!(kinds_of(&pushes, None), ["phone", "phone", "laptop"]);
    let down = phone.decrypt_json(&pushes[1]).unwrap();
    assert_eq!(
        (down["kind"].as_str(), down["title"].as_str(), down["url"].as_str()),
        (Some("agent_down"), Some("Agent gpu-box is down"), Some("/"))
    );
    assert_eq!(down["session_id"], Value::Null);
    // Unmuting brings them back; the store has every change.
    let unmute: BTreeMap<String, bool> = [("s1".to_string(), false)].into();
    t.push.set_mutes(&p.id, None, &unmute, known).unwrap();
    t.push.set_mutes(&l.id, Some(false), &BTreeMap::new(), known).unwrap();
    notifier.notify(Event::TurnEnded { session: session("s1") });
    let pushes = t.barrier(&l, 6).await;
    assert_eq!(kinds_of(&pushes[3..], None).iter().filter(|n| *n == "phone").count(), 1);
    let stored = t.store.load().unwrap().push_subscriptions;
    assert!(stored.values().all(|s| !s.muted && s.muted_sessions.is_empty()), "{stored:?}");
}

#[tokio::test]
async fn a_subscription_the_push_service_says_is_gone_is_removed() {
    let t = setup().await;
    let (phone, old) = (t.service.subscriber("phone"), t.service.subscriber("old"));
    let (p, o) = (t.subscribe(&phone), t.subscribe(&old));
    t.service.answer("old", 410);
    t.push.notifier().notify(Event::TurnEnded { session: session("s1") });
    t.barrier(&p, 2).await;
    assert!(t.push.get(&o.id).is_none(), "410: removed");
    assert!(!t.store.load().unwrap().push_subscriptions.contains_key(&o.id), "from the store too");
    // 404 the same, and a test push reports it.
    t.service.answer("phone", 404);
    let e = t.push.test(&p.id).await.unwrap_err();
    assert_eq!(e.status, StatusCode::BAD_GATEWAY);
    assert!(e.detail.as_str().unwrap().contains("answered 404"), "{e:?}");
    assert!(t.push.get(&p.id).is_none());
    assert_eq!(t.push.test(&p.id).await.unwrap_err().status, StatusCode::NOT_FOUND);
    // Another failure keeps the subscription and says what the service said.
    let again = t.subscribe(&phone);
    t.service.answer("phone", 503);
    let e = t.push.test(&again.id).await.unwrap_err();
    assert!(e.detail.as_str().unwrap().contains("503"), "{e:?}");
    assert!(t.push.get(&again.id).is_some());
}

#[tokio::test]
async fn subscriptions_are_checked_renewed_in_place_and_bounded() {
    let t = setup().await;
    let phone = t.service.subscriber("phone");
    let sub = phone.subscription();
    let (p256dh, auth) = (sub["keys"]["p256dh"].as_str().unwrap(), sub["keys"]["auth"].as_str().unwrap());
    let refused = |endpoint: &str, key: &str, secret: &str| {
        let e = t.push.subscribe(endpoint, key, secret, None).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint}");
        e.detail.to_string()
    };
    for endpoint in [
        "ftp://push.example/x",
        "http://push.example/x",
        "https://user:pw@push.example/x",
        "not a url",
        &format!("https://push.example/{}", "x".repeat(MAX_ENDPOINT)),
    ] {
        assert!(refused(endpoint, p256dh, auth).contains("endpoint"), "{endpoint}");
    }
    assert!(refused(&phone.endpoint, "AAAA", auth).contains("not a P-256 public key"));
    assert!(refused(&phone.endpoint, p256dh, "AAAA").contains("16 bytes"));
    assert!(refused(&phone.endpoint, p256dh, "!!").contains("base64url"));
    assert!(refused(&phone.endpoint, &"A".repeat(300), auth).contains("too long"));

    let first = t.push.subscribe(&phone.endpoint, p256dh, auth, Some("https://box.tail1234.ts.net")).unwrap();
    assert_eq!(first.contact.as_deref(), Some("https://box.tail1234.ts.net"), "an HTTPS page is the contact");
    let muted = t.push.set_mutes(&first.id, Some(true), &BTreeMap::new(), |_| true).unwrap();
    let again = t.push.subscribe(&phone.endpoint, p256dh, auth, Some("http://127.0.0.1:7832")).unwrap();
    assert_eq!(
        (again.id.as_str(), again.muted, again.created_at.as_str()),
        (first.id.as_str(), true, first.created_at.as_str())
    );
    assert_eq!(again.contact, first.contact, "an HTTP page does not replace it");
    assert_eq!(muted.id.len(), 64);
    for n in 1..MAX_SUBSCRIPTIONS {
        t.push.subscribe(&format!("{}-{n}", phone.endpoint), p256dh, auth, None).unwrap();
    }
    let e = t.push.subscribe(&format!("{}-more", phone.endpoint), p256dh, auth, None).unwrap_err();
    assert_eq!(e.status, StatusCode::CONFLICT);
    assert!(t.push.unsubscribe(&first.id).unwrap());
    assert!(!t.push.unsubscribe(&first.id).unwrap());
    assert_eq!(t.store.load().unwrap().push_subscriptions.len(), MAX_SUBSCRIPTIONS - 1);
}

#[test]
fn texts_are_cut_and_dialogs_named() {
    let long = "é".repeat(500);
    assert_eq!(cut(&long).chars().count(), MAX_BODY_CHARS + 1);
    let frame = json!({"type": "piface_attention_required", "session_id": "s", "request": {"method": "confirm", "title": "Run the migration?"}});
    let m = describe(&Event::Attention { session: session("s"), request: Some(frame.to_string().into()) });
    assert_eq!((m.kind, m.body.as_str()), (NotificationKind::Attention, "pi asks: Run the migration?"));
    let untitled = json!({"request": {"method": "input", "message": "  "}});
    let m = describe(&Event::Attention { session: session("s"), request: Some(untitled.to_string().into()) });
    assert_eq!(m.body, "pi asks you something");
    let m = describe(&Event::Exited { session: session("s"), code: None, stderr: String::new() });
    assert_eq!(m.body, "pi stopped (killed by a signal)");
    let record: SessionRecord =
        serde_json::from_value(json!({"piface_id": "x", "working_dir": "/home/u/src/piface/", "status": "live"}))
            .unwrap();
    assert_eq!(SessionInfo::of(&record).name, "piface");
}
