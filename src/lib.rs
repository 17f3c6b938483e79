//! hamn: an open geodata API server. Ingests municipal datasets (through GDAL) into PostGIS or
//! an embedded store, and serves them over HTTP.
//!
//! Modules, one concept each: `catalog` (what a collection is), `ingest` (files → rows),
//! `store` (where rows live, atomically), `collation` (the order of text), `engine` (in-memory snapshots that answer
//! queries), `formats` (features as CSV, GeoJSON sequences, FlatGeobuf), `api` (HTTP), `config` and `cli` (how it is run),
//! `demo` (the bundled demo data), `theme` (shared schemas that many publishers' files map into).

pub mod api;
pub mod auth;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod collation;
pub mod config;
pub mod cql2;
pub mod crs;
pub mod demo;
pub mod download;
pub mod engine;
pub mod formats;
pub mod ingest;
pub mod publish;
pub mod search;
pub mod store;
pub mod theme;
pub mod tiles;
