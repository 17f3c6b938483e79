//! Compiles a bound query to SQL (placeholder: being written).
