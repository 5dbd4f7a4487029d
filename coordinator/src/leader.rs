//! Which coordinator leads the cluster, and what the others do meanwhile.
//!
//! With the state in etcd (`--store etcd`) several coordinators may run; exactly one leads,
//! elected through etcd (a lease of `--leader-ttl` and a campaign on `<prefix>leader`, see
//! `store::etcd`). The others are standbys: they hold no session state, serve nothing and wait
//! for the leader's lease to end. A standby
//!
//! - answers HTTP with **503** and where the leader is (`{"error": …, "leader": URL}`, and
//!   `GET /api/health` as `{"status": "standby", "leader": URL}`), so a load balancer that
//!   health-checks `/api/health` sends every request to the leader; a browser's page load (a
//!   `GET` outside `/api/`) is redirected (307) to the leader's URL when it is known. It never
//!   proxies: a standby that forwards requests would need the leader's login and would hide
//!   which machine answers.
//! - closes agent connections with [`close::STANDBY`], naming the leader's agent address, so an
//!   agent given several coordinators goes to the leader at once.
//!
//! When the leader's lease ends (it was killed, or lost etcd for a whole TTL) a standby wins
//! the campaign, loads the state from etcd and serves; agents reconnect to it and resume their
//! streams where the journal says. A leader that can no longer be sure it leads (no renewal
//! for a whole TTL, or etcd says its lease is gone) stops at once ([`Election::lost`]) rather
//! than risk two leaders: its supervisor starts it again, as a standby.
//!
//! With the embedded store there is no election: the only coordinator leads.
//!
//! What it is not: the campaign itself (etcd's election API, in `store::etcd`), and no state.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use piface_link::close;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::front_door;

/// What a coordinator publishes when it leads: where browsers and agents find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Its name (the host name unless `--name`), for logs.
    pub name: String,
    /// Its HTTP base URL for browsers (`--advertise-url`), when known.
    #[serde(default)]
    pub url: Option<String>,
    /// Its agents' address `HOST:PORT` (`--advertise-agents`), when known.
    #[serde(default)]
    pub agents: Option<String>,
}

/// A coordinator's part in the election, as the campaign reports it.
pub struct Election {
    /// The leader as last observed; `None` while nobody leads (or it is not known yet).
    pub leader: watch::Receiver<Option<LeaderInfo>>,
    /// Cancelled once this coordinator leads.
    pub elected: CancellationToken,
    /// Cancelled when this coordinator led and can no longer be sure it does: it must stop
    /// serving at once.
    pub lost: CancellationToken,
    /// Cancelled by [`Election::resign`]: the campaign gives the lease back.
    pub resign: CancellationToken,
    /// Cancelled by the campaign once the lease is given back (or could not be).
    pub resigned: CancellationToken,
}

impl Election {
    /// Gives up leadership (or candidacy) so that a standby takes over now rather than when
    /// the lease would have run out; waits up to 5 s for etcd to confirm.
    pub async fn resign(&self) {
        self.resign.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.resigned.cancelled()).await;
    }
}

/// What the standby's HTTP answers need.
#[derive(Clone)]
struct Standby {
    leader: watch::Receiver<Option<LeaderInfo>>,
    policy: Arc<front_door::Policy>,
}

/// The router a standby serves until it leads: 503 with the leader's whereabouts (see the
/// module docs), behind the same Host check as the leader's routes (no DNS rebinding of a
/// standby either).
pub fn standby_router(leader: watch::Receiver<Option<LeaderInfo>>, policy: front_door::Policy) -> axum::Router {
    axum::Router::new().fallback(standby_answer).with_state(Standby { leader, policy: Arc::new(policy) })
}

async fn standby_answer(State(standby): State<Standby>, req: Request) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    let seen = front_door::observe(&standby.policy, req.headers(), authority.as_deref(), peer);
    if let Err(e) = standby.policy.check_host(&seen) {
        return e.into_response();
    }
    let leader = standby.leader.borrow().clone();
    let url = leader.as_ref().and_then(|l| l.url.clone());
    let path = req.uri().path();
    let mut response = if path == "/api/health" {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "standby", "leader": url })))
            .into_response()
    } else if let (true, Some(url)) = (req.method() == Method::GET && !path.starts_with("/api/"), &url) {
        let target = format!("{}{}", url.trim_end_matches('/'), req.uri().path_and_query().map_or("/", |p| p.as_str()));
        match HeaderValue::from_str(&target) {
            Ok(location) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    } else {
        let error = "this coordinator is a standby: another one leads the cluster";
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "error": error, "leader": url })))
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    front_door::harden(headers);
    response
}

/// Closes every agent connection with [`close::STANDBY`] (naming the leader's agent address)
/// until `stop`. The handshake completes first, so only agents of this cluster (or agents
/// enrolling with its CA's fingerprint) learn where the leader is.
pub async fn refuse_agents(
    endpoint: quinn::Endpoint,
    leader: watch::Receiver<Option<LeaderInfo>>,
    stop: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
            () = stop.cancelled() => return,
        };
        let leader = leader.clone();
        tokio::spawn(async move {
            let Ok(Ok(conn)) = tokio::time::timeout(std::time::Duration::from_secs(5), incoming).await else { return };
            let hint = leader.borrow().as_ref().and_then(|l| l.agents.clone()).unwrap_or_default();
            debug!(peer = %conn.remote_address(), leader = %hint, "an agent reached this standby");
            conn.close(close::STANDBY.into(), hint.as_bytes());
        });
    }
}
