//! The PostGIS engine: serves a collection straight from its table in PostGIS, for
//! collections too large for memory. `compile` turns a bound query (boxes, time, attribute
//! equality, a CQL2 predicate, sort keys) into SQL whose every value is a bind parameter;
//! `tile` writes one vector tile layer with `ST_AsMVT`, as the memory engine's `tiles::mvt`
//! does.

pub mod compile;
pub mod tile;
