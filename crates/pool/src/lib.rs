//! The Redis seat pool (placeholder until the pool lands).
