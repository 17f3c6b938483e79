//! One vector tile layer by `ST_AsMVT` (placeholder: being written).
