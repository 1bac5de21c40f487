//! Integration tests: the real `hero_logic` binary, the real sandbox.
mod integration;
