//! Where CNAF audits go, and how a finding becomes an audit record.

use protect::audit::{cnaf_message, AuditKind, AuditRecord};
use protect::policy::Effect;

use crate::model::Finding;
use crate::policy::CnafEffect;

/// Receives one [`AuditRecord`] (kind `cnaf`) per finding. Implementations must not block: the
/// proxy calls this on the request path.
pub trait AuditSink: Send + Sync + 'static {
    /// Take one record.
    fn record(&self, record: AuditRecord);
}

impl AuditSink for tokio::sync::mpsc::UnboundedSender<AuditRecord> {
    fn record(&self, record: AuditRecord) {
        // The receiver is gone only while shutting down; nothing to deliver to then.
        let _ = self.send(record);
    }
}

impl AuditSink for tokio::sync::mpsc::Sender<AuditRecord> {
    fn record(&self, record: AuditRecord) {
        if let Err(e) = self.try_send(record) {
            tracing::warn!("cnaf: audit queue full or closed, audit dropped: {e}");
        }
    }
}

/// Audits are dropped (the proxy still logs through `tracing`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardAudits;

impl AuditSink for DiscardAudits {
    fn record(&self, _record: AuditRecord) {}
}

/// The workload the proxy protects, copied into every audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub task_family: String,
    pub task_arn: String,
    pub container: String,
    pub image: String,
}

/// What the proxy knows about the request when it audits.
pub(crate) struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub source_ip: String,
    pub request_id: &'a str,
    pub rule: &'a str,
}

pub(crate) fn record_for(ctx: &AuditContext, req: &RequestInfo<'_>, f: &Finding) -> AuditRecord {
    let effect = match f.effect {
        CnafEffect::Prevent => Effect::Prevent,
        CnafEffect::Alert | CnafEffect::Disable => Effect::Alert,
    };
    let location = f.location.to_string();
    let message = cnaf_message(f.attack.describe(), &location, &req.source_ip, f.effect);
    let mut r = AuditRecord::new(AuditKind::Cnaf, effect, req.rule, message);
    r.task_family.clone_from(&ctx.task_family);
    r.task_arn.clone_from(&ctx.task_arn);
    r.container.clone_from(&ctx.container);
    r.image.clone_from(&ctx.image);
    r.attack = Some(f.attack.key().to_string());
    r.location = Some(location);
    r.method = Some(req.method.to_string());
    r.path = Some(crate::model::sanitize_snippet(req.path));
    r.source_ip = Some(req.source_ip.clone());
    r.request_id = Some(req.request_id.to_string());
    r.snippet = Some(f.snippet.clone());
    r
}
