//! Compiles a bound query to SQL (interim: boxes only, until the full compiler lands).

use crate::catalog::CatalogEntry;
use crate::collation::Collation;
use crate::engine::{Query, SortKey};

/// Parameters of one statement, in $n order.
pub type Params = Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

pub fn condition(
    q: &Query,
    _entry: &CatalogEntry,
    params: &mut Params,
) -> Result<String, Unsupported> {
    if q.datetime.is_some() || !q.equals.is_empty() || q.filter.is_some() || !q.sort.is_empty() {
        return Err(Unsupported("not yet".into()));
    }
    if q.bbox.is_empty() {
        return Ok("TRUE".into());
    }
    let mut parts = Vec::new();
    for b in &q.bbox {
        let n = params.len();
        for v in b {
            params.push(Box::new(*v));
        }
        parts.push(format!(
            "(geom && ST_MakeEnvelope(${}, ${}, ${}, ${}, 4326) AND ST_Intersects(geom, ST_MakeEnvelope(${0}, ${1}, ${2}, ${3}, 4326)))",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
    }
    Ok(format!("({})", parts.join(" OR ")))
}

pub fn order_by(_sort: &[SortKey], _entry: &CatalogEntry, _collation: &Collation) -> String {
    "hamn_fid".into()
}
