//! GeoJSON features one after another, not in a FeatureCollection: as a GeoJSON text sequence
//! (RFC 8142, `application/geo+json-seq`: RS before each feature, LF after it) or as
//! newline-delimited JSON (`application/ndjson`: LF after each). Each feature is the one the
//! GeoJSON page holds: same id, properties and coordinates (in the requested CRS's axis order).

use super::{feature_geojson, EncodeError, FeatureEncoder};
use crate::catalog::CatalogEntry;
use crate::crs::Crs;
use crate::engine::snapshot::Feature;

/// The record separator RFC 7464 puts before each text.
const RS: u8 = 0x1E;

pub struct Seq {
    entry: CatalogEntry,
    crs: Crs,
    selected: Option<Vec<usize>>,
    /// RFC 8142 (RS before each feature); else NDJSON.
    rs: bool,
}

impl Seq {
    pub fn new(entry: CatalogEntry, crs: Crs, selected: Option<Vec<usize>>, rs: bool) -> Self {
        Self {
            entry,
            crs,
            selected,
            rs,
        }
    }
}

impl FeatureEncoder for Seq {
    fn head(&mut self, _out: &mut Vec<u8>) {}

    fn feature(&mut self, f: &Feature, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let json = feature_geojson(&self.entry, f, self.crs, self.selected.as_deref())?;
        if self.rs {
            out.push(RS);
        }
        out.extend_from_slice(json.as_bytes());
        out.push(b'\n');
        Ok(())
    }
}
