//! pi's model list for `GET /api/models`: cached, refreshed in the background when old.
//!
//! Sources in order: a live session's pi (`get_available_models`), else a throw-away probe
//! pi on the agent. A failed lookup is not cached. Unlike the original, whose cache never
//! refreshes after the first success, an entry older than [`MAX_AGE`] is served once more
//! while a refresh runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use piface_shared::protocol::{FromAgent, ToAgent};
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::App;

/// Age after which the cached list is refreshed.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// See the module docs.
#[derive(Default)]
pub struct ModelsCache {
    /// The JSON array and when it was fetched.
    cached: Mutex<Option<(Instant, Bytes)>>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl ModelsCache {
    /// The JSON array of models (`[]` when none could be had).
    pub async fn get(&self, app: &Arc<App>) -> Bytes {
        let cached = self.cached.lock().unwrap().clone();
        match cached {
            Some((at, models)) => {
                if at.elapsed() > MAX_AGE {
                    let app = app.clone();
                    let asked = Instant::now();
                    tokio::spawn(async move { app.models.refresh(&app, asked).await });
                }
                models
            }
            None => self.refresh(app, Instant::now()).await.unwrap_or_else(|| Bytes::from_static(b"[]")),
        }
    }

    /// Fetches the list unless it was fetched after `asked`; `None` when no source answered.
    pub async fn refresh(&self, app: &Arc<App>, asked: Instant) -> Option<Bytes> {
        let _one = self.refreshing.lock().await;
        if let Some((at, models)) = self.cached.lock().unwrap().clone() {
            if at > asked {
                return Some(models); // someone else refreshed while we waited
            }
        }
        let models = match from_live_session(app).await {
            Some(models) => Some(models),
            None => from_probe(app).await,
        };
        if let Some(models) = &models {
            *self.cached.lock().unwrap() = Some((Instant::now(), models.clone()));
        }
        models
    }
}

async fn from_live_session(app: &Arc<App>) -> Option<Bytes> {
    let id = app.registry.live_ids().into_iter().next()?;
    let mut cmd = Map::new();
    cmd.insert("type".into(), "get_available_models".into());
    match crate::sessions::pi_request(app, &id, cmd).await {
        Ok(reply) => {
            let models: Vec<&Value> = reply
                .pointer("/data/models")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter(|m| m.is_object()).collect())
                .unwrap_or_default();
            serde_json::to_vec(&models).ok().map(Bytes::from)
        }
        Err(e) => {
            debug!(session_id = %id, "live session could not list models: {e}");
            None
        }
    }
}

async fn from_probe(app: &Arc<App>) -> Option<Bytes> {
    let agent = app.agents.any()?;
    let reply = agent.request(|req| ToAgent::ProbeModels { req, trace: None }, Duration::from_secs(60)).await;
    match reply {
        Ok(FromAgent::Models { result: Ok(models), .. }) => Some(models),
        Ok(FromAgent::Models { result: Err(e), .. }) => {
            warn!("model probe failed: {e}");
            None
        }
        Ok(other) => {
            warn!("unexpected reply to the model probe: {other:?}");
            None
        }
        Err(e) => {
            warn!("model probe: {e}");
            None
        }
    }
}
