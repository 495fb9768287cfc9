//! Placeholder; the benchmark is written after the engine.
