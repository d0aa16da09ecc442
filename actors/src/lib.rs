//! Supervised connection actors. No pyo3 here.
